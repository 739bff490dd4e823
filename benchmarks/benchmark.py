"""Accuracy and speed of every shipped zoo model and the classical baseline, in one process.

Prints a table and writes it to docs/benchmarks.md. Scores are on the 58 validation
images of the shared DSB split; time is the whole ``segment()`` call (preprocessing,
prediction, watershed, measurements) per megapixel on this machine's CPU, no TTA.

    python benchmarks/benchmark.py [--limit N] [--threads 2] [--tta]
"""

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from napari_nucleiseg import segment
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize
from napari_nucleiseg.inference.postprocess import classical_instances
from napari_nucleiseg.inference.preprocess import KINDS, image_kind, prepare
from napari_nucleiseg.io.images import read_image, read_labels
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, read_ids
from napari_nucleiseg.zoo import list_models

DOCS = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def run(name, fn, data):
    rows, seconds, pixels = [], 0.0, 0
    for image, labels, _ in data:
        t0 = time.perf_counter()
        pred = fn(image)
        seconds += time.perf_counter() - t0
        pixels += labels.size
        rows.append(evaluate_image(labels, pred))
    s = summarize(rows)
    s["s_per_mp"] = seconds / (pixels / 1e6)
    s["name"] = name
    for kind in KINDS:
        s[kind] = float(np.mean([r["ap50"] for r, (_, _, k) in zip(rows, data) if k == kind] or [np.nan]))
    return s


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tta", action="store_true", help="also run each model with TTA")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--update-cards", action="store_true",
                    help="record the measured s/MP in the shipped models' cards")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = default_data_dir()
    if not (root / "train").is_dir():
        raise SystemExit(f"shared DSB data not found at {root}: nothing to benchmark")
    ids = set(read_ids(root / "val.txt"))
    pairs = [(ip, lp) for n, ip, lp in find_pairs(root / "train") if n in ids][: args.limit]
    data = [(im, read_labels(lp), image_kind(im)) for im, lp in ((read_image(ip), lp) for ip, lp in pairs)]
    results = [run("classical Otsu + distance watershed", lambda im: classical_instances(prepare(im)), data)]
    for e in list_models():
        if e.user or "specialist" in e.card:  # specialists run inside their parent's row
            continue
        for kind in KINDS:  # load and warm up the model, and its specialists
            segment(next((im for im, _, k in data if k == kind), data[0][0]), model=e.name)
        results.append(run(e.name, lambda im, n=e.name: segment(im, model=n).labels, data))
        if e.target_diameter():  # the same model without nucleus-size normalisation (sizing.py)
            results.append(run(e.name + " (diameter off)",
                               lambda im, n=e.name: segment(im, model=n, diameter=None).labels, data))
        if args.tta:
            results.append(run(e.name + " + TTA", lambda im, n=e.name: segment(im, model=n, tta=True).labels, data))
    counts = {k: sum(d[2] == k for d in data) for k in KINDS}
    header = ("| method | DSB score | AP@0.5 | F1 | PQ | semantic IoU | s / MP | "
              + " | ".join(f"AP@0.5 {k} ({counts[k]})" for k in KINDS) + " |\n|" + "---|" * (7 + len(KINDS)))
    lines = [f"| {r['name']} | {r['dsb_score']:.3f} | {r['ap50']:.3f} | {r['f1']:.3f} | {r['pq']:.3f} | "
             f"{r['semantic_iou']:.3f} | {r['s_per_mp']:.2f} | " + " | ".join(f"{r[k]:.3f}" for k in KINDS) + " |"
             for r in results]
    table = "\n".join([header, *lines])
    print(table)
    if args.update_cards:
        import json

        for e, r in ((e, r) for r in results for e in list_models() if e.name == r["name"] and not e.user):
            card_path = e.weights.with_suffix(".json")
            card = json.loads(card_path.read_text())
            card["speed"] = {"seconds_per_mp": round(r["s_per_mp"], 3),
                             "device": f"CPU, {args.threads} torch threads, bf16 autocast, idle machine",
                             "includes": "whole segment() call: preprocessing, tiled prediction, "
                                         "watershed, per-nucleus table; no TTA",
                             "command": "python benchmarks/benchmark.py --update-cards"}
            card_path.write_text(json.dumps(card, indent=1))
    if not args.no_write:
        mp = sum(lab.size for _, lab, _ in data) / 1e6
        cpu = platform.processor() or platform.machine()
        DOCS.parent.mkdir(exist_ok=True)
        DOCS.write_text(
            f"# Benchmarks\n\n## Accuracy and speed on the DSB 2018 validation split\n\n"
            f"{len(data)} validation images ({mp:.1f} megapixels) of `../shared/data/dsb2018` (ids in "
            f"`val.txt`); measured {date.today()} on {cpu}, {args.threads} torch threads, no GPU. "
            f"Time is the whole `segment()` call (preprocessing, tiled prediction in bf16, watershed, "
            f"per-nucleus table), no test-time augmentation. AP@0.5 is TP/(TP+FP+FN) at IoU 0.5, "
            f"as in the DSB score; the last columns split it by image kind (`preprocess.image_kind`). "
            f"A model whose card names specialists hands those kinds of image to them, as `segment()` "
            f"does, so its row is the whole routed result. Images whose nuclei are larger than the model's "
            f"training size are segmented shrunk to it (`sizing.py`, `diameter=\"auto\"`); the "
            f"\"diameter off\" rows are the same models without that.\n\n"
            f"Reproduce: `python benchmarks/benchmark.py --tta`\n\n{table}\n"
        )
        for extra in ("stain_input.md", "batch_benchmark.md"):
            report = DOCS.parent / extra
            if report.exists():
                with DOCS.open("a") as f:
                    f.write("\n" + report.read_text().replace("# ", "## ", 1))


if __name__ == "__main__":
    main()
