"""Turn a detector training run (``train_model.py --arch maskrcnn_lite``) into a shipped zoo model:
fp16 weights, a model card, and its DSB validation figures measured by ``segment()``.

The card's figures come from the whole ``segment()`` call on the 58 validation images of
``val.txt``, scored as ``benchmarks/benchmark.py`` scores every model (``benchmark.run``); the
per-nucleus confidence (the detection score) is judged by its AUROC for correct vs wrong nuclei.
The score threshold is tuned on 60 *training* images (``devtools.tuning_images``, never on
validation or test images): one ``segment()`` per image at the lowest candidate threshold, then
each higher threshold drops the nuclei scored below it (pasting runs in score order, so the
nuclei kept are the same as a run at that threshold would give, up to the sizing pass).

    python scripts/ship_detector.py runs/maskrcnn-lite --name maskrcnn-lite --command "..."
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from devtools import tuning_images
from ship_model import speed_device, training_sizing

from napari_nucleiseg import segment, zoo
from napari_nucleiseg.device import resolve_device
from napari_nucleiseg.evaluation.metrics import auroc, evaluate_image, match_status, summarize
from napari_nucleiseg.inference.kinds import KINDS
from napari_nucleiseg.io.images import read_image, read_labels
from napari_nucleiseg.models import build
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, split_dsb
from napari_nucleiseg.zoo.weights_file import read_blob

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchmark import load_sets, run  # noqa: E402

POSTPROCESS = {"threshold": 0.5, "min_size": 8}
THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def tune_threshold(name: str, train, data: str) -> tuple[float, dict]:
    """The score threshold with the best mean DSB score on the tuning images, and every
    threshold's score."""
    paths = {n: (ip, lp) for n, ip, lp in find_pairs(Path(data) / "train")}
    rows = {t: [] for t in THRESHOLDS}
    for s in tuning_images(train):
        ip, lp = paths[s.name]
        seg = segment(read_image(ip, for_segmentation=True), model=name, threshold=THRESHOLDS[0])
        truth = read_labels(lp)
        score = np.ones(int(seg.labels.max()) + 1)  # by label (the background's is never used)
        score[seg.table["label"].to_numpy().astype(int)] = seg.table["confidence"].to_numpy()
        for t in THRESHOLDS:
            rows[t].append(evaluate_image(truth, np.where(score[seg.labels] >= t, seg.labels, 0)))
    scores = {t: summarize(r)["dsb_score"] for t, r in rows.items()}
    return max(scores, key=scores.get), scores


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run", type=Path, help="training folder with best.pt and history.json")
    ap.add_argument("--name", required=True)
    ap.add_argument("--command", required=True, help="the training command, for the card")
    ap.add_argument("--device-note", default="CPU, 2 cores (1 torch thread, shared with other jobs)")
    ap.add_argument("--data", default=str(default_data_dir()))
    return ap.parse_args(argv)


def make_card(args, blob: dict, hist: dict, n_train: int, sizing: dict) -> dict:
    """The card before validation: architecture, training, post-processing, sizing."""
    model = build(blob["architecture"], **blob.get("config", {}))
    rows = hist["history"]
    return {
        "name": args.name,
        "description": "Mask R-CNN-style detector (papers' detect-then-segment): residual encoder + FPN, "
                       "RPN, box and 28x28 mask heads; boxes with scores, masks pasted into labels",
        "default": False,
        "architecture": blob["architecture"],
        "config": blob.get("config", {}),
        "parameters": sum(p.numel() for p in model.parameters()),
        "outputs": ["instances"],
        "licence": "CC0 training data (DSB 2018, BBBC038); weights: the project's licence",
        "training": {
            "data": "DSB 2018 stage 1 train, corrected (BBBC038, CC0), ../shared/data/dsb2018",
            "split": f"{n_train} training images (the DSB test split splits/dsb2018_test.txt held out); "
                     "validation = the 58 ids of val.txt",
            "command": args.command,
            "epochs": blob.get("epoch"),
            "epochs_run": len(rows),
            "seconds": rows[-1]["seconds"] if rows else None,
            "device": args.device_note,
            "history": f"docs/training_history/{args.name}.json (per-epoch loss and validation scores)",
        },
        "postprocess": dict(POSTPROCESS),
        "postprocess_note": "threshold: the lowest detection score kept (tuned); min_size: the fewest "
                            "pixels of a nucleus; overlaps go to the higher score (inference/paste.py)",
        "maps": "probability: union (pixelwise maximum) of the soft masks; uncertainty: its binary entropy; "
                "border: none (zeros); table confidence: the detection score",
        "sizing": sizing,
    }


def validate(name: str, data: str) -> tuple[dict, dict]:
    """``benchmark.run`` on DSB val and the held-out DSB test split (scores, and s/MP of whole
    ``segment()`` calls on DSB val), and the AUROC of the confidence column for correct (IoU > 0.5)
    vs wrong nuclei of DSB val (computed after the timing)."""
    sets = load_sets(Path(data), None)
    val = {k: sets[k] for k in ("DSB val", "DSB test")}
    tables = []

    def seg_labels(image):
        seg = segment(image, model=name)
        tables.append((seg.labels, seg.table))
        return seg.labels

    load = os.getloadavg()[0]
    r = run(name, seg_labels, val)
    conf, correct = [], []
    for (_, truth, _), (labels, table) in zip(val["DSB val"], tables):  # DSB val came first
        ok, _ = match_status(truth, labels)
        conf.extend(table["confidence"].tolist())
        correct.extend(ok[table["label"].to_numpy().astype(int)].tolist())
    return r, {"confidence_auroc": auroc(conf, correct), "load": load}


def main(argv=None):
    args = parse_args(argv)
    blob = read_blob(args.run / "best.pt")
    hist = json.loads((args.run / "history.json").read_text())
    train, _ = split_dsb(args.data, test_file=ROOT / "splits" / "dsb2018_test.txt")
    dest = zoo.SHIPPED_DIR
    card = make_card(args, blob, hist, len(train), training_sizing(train))
    shutil.copyfile(args.run / "best.pt", dest / f"{args.name}.pt")
    (dest / f"{args.name}.json").write_text(json.dumps(card, indent=1))
    folder = ROOT / "docs" / "training_history"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{args.name}.json").write_text(json.dumps(hist, indent=1))
    best, tuned = tune_threshold(args.name, train, args.data)
    card["postprocess"]["threshold"] = best
    card["postprocess_tuning"] = {"dsb_score_by_threshold": {str(t): round(v, 4) for t, v in tuned.items()},
                                  "images": "60 training images (scripts/devtools.tuning_images)"}
    (dest / f"{args.name}.json").write_text(json.dumps(card, indent=1))
    r, extra = validate(args.name, args.data)
    m = r["DSB val"]
    card["validation"] = {k: m[k] for k in ("dsb_score", "ap50", "f1", "pq", "semantic_iou", "aji",
                                            "tp", "fp", "fn", "n_images")}
    card["validation"]["confidence_auroc"] = extra["confidence_auroc"]
    card["validation"]["ap50_by_kind"] = {k: m[k] for k in KINDS}
    card["test"] = {"DSB test": {k: round(v, 4) if isinstance(v, float) else v for k, v in r["DSB test"].items()}}
    card["speed"] = {"seconds_per_mp": round(r["s_per_mp"], 3),
                     "device": speed_device(resolve_device(None), extra["load"]),
                     "includes": "whole segment() call: preprocessing, tiled detection, mask pasting, "
                                 "per-nucleus table; no TTA",
                     "command": f"python scripts/ship_detector.py {args.run} --name {args.name} --command ..."}
    (dest / f"{args.name}.json").write_text(json.dumps(card, indent=1))
    print(json.dumps({"validation": card["validation"], "speed": card["speed"]}, indent=1))


if __name__ == "__main__":
    main()
