"""Turn a training run into a shipped zoo model: weights, tuned post-processing and a model card.

Post-processing is tuned on 60 *training* images (never on validation); the card's
figures are measured on the 58 validation images of ``val.txt``.

    python scripts/ship_model.py runs/unet16 --name unet16 --description "..." [--default]

A specialist for one image kind (``--specialist-for stained --continues resunet32``) keeps
its parent's post-processing (``segment`` applies the named model's), is measured on the
validation images of its kind only, and is named in the parent's card (``specialists``).
"""

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import torch
from devtools import routed_maps, specialist_models, tune_postprocess, tuning_images, validate  # noqa: E402

from napari_nucleiseg import zoo
from napari_nucleiseg.device import describe, resolve_device
from napari_nucleiseg.inference.sizing import pooled_diameter
from napari_nucleiseg.training.dataset import default_data_dir, split_dsb


def training_sizing(train) -> dict:
    """Card ``sizing`` for a model trained on ``train``: the nucleus size it saw most."""
    n = sum(len(np.unique(s.labels[s.labels > 0])) for s in train)
    return {"target_diameter": round(pooled_diameter([s.labels for s in train]), 1),
            "source": f"median equivalent-circle diameter of the {n} ground-truth nuclei of the "
                      f"{len(train)} training images: the size the model saw most in training (its scale "
                      "augmentation, 0.6-1.6, is centred on 1). segment() shrinks an image to it when the "
                      "first pass finds a median nucleus diameter above target / 0.9 (sizing.py)"}


def staged_training(previous: dict, training: dict, run: Path, hist: dict, lr) -> dict:
    """Training record of a warm restart: the previous card's stages plus this run.

    Each stage starts from the previous stage's best weights, so the epochs behind the
    shipped weights are the sum of the stages' best epochs.
    """
    old = previous["training"]
    stages = old.get("stages") or [{k: old.get(k) for k in ("epochs_run", "seconds", "device")}
                                    | {"best_epoch": old.get("epochs")}]
    stages = stages + [{
        "run": f"{run} (warm restart from the shipped {previous['name']} weights)",
        "epochs_run": training["epochs_run"], "best_epoch": training["epochs"],
        "seconds": training["seconds"], "lr": lr, "device": training["device"],
        "weights": training.pop("weights", "the best validation checkpoint"),
    }]
    training.update({
        "command": f"{old['command']}; then: {training['command']}",
        "epochs": sum(st["best_epoch"] for st in stages),
        "epochs_note": "sum of each stage's best (or last averaged) epoch; every stage starts from "
                       "the previous stage's weights",
        "epochs_run": sum(st["epochs_run"] for st in stages),
        "seconds": round(sum(st["seconds"] for st in stages), 1),
        "device": "CPU, 2 cores (see stages)",
        "stages": stages,
    })
    return training


def speed_device(device, load_start: float) -> str:
    """The card's ``speed.device``: what this run knows of the conditions of its timing."""
    return (f"{describe(device)}; {os.cpu_count()} CPU cores, 1-minute load average {load_start:.2f} "
            "at the start of the run")


def main():
    load_start = os.getloadavg()[0]  # the host may be shared: other jobs slow the timing down
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--name", required=True)
    ap.add_argument("--description", required=True)
    ap.add_argument("--command", default="", help="the training command, recorded in the card")
    ap.add_argument("--default", action="store_true")
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--continues", default=None,
                    help="shipped model this run warm-restarted from: its card's stages are kept")
    ap.add_argument("--lr", type=float, default=None, help="this run's learning rate, for the card")
    ap.add_argument("--weights", default=None,
                    help="weights file to ship instead of RUN/best.pt (e.g. from average_weights.py)")
    ap.add_argument("--device-note", default="CPU, 2 cores (1 thread, shared with a second training run)")
    ap.add_argument("--specialist-for", default=None, metavar="KIND",
                    help="ship a specialist of the --continues model for this image kind")
    args = ap.parse_args()
    if args.specialist_for and not args.continues:
        ap.error("--specialist-for needs --continues PARENT")
    run = Path(args.run)
    hist = json.loads((run / "history.json").read_text())
    weights = Path(args.weights) if args.weights else run / "best.pt"
    model, blob = zoo.load_weights_file(weights)
    device = resolve_device("cpu")
    model = model.to(memory_format=torch.channels_last)
    train, val = split_dsb(args.data)
    dest = zoo.SHIPPED_DIR
    previous = json.loads((dest / f"{args.continues}.json").read_text()) if args.continues else {}
    specialists = {} if args.specialist_for else specialist_models(previous)
    sizing = previous.get("sizing") or training_sizing(train)
    target = sizing["target_diameter"]
    if args.specialist_for:
        post = previous["postprocess"]
        train = [s for s in train if s.kind == args.specialist_for]
        val = [s for s in val if s.kind == args.specialist_for]
    else:
        tune = tuning_images(train)
        first = previous.get("postprocess") or zoo.DEFAULT_POSTPROCESS  # decides the scale of the tuning maps
        post, tune_score = tune_postprocess(routed_maps(model, tune, device, specialists, first, target), tune)
        print("post-processing", post, "tuning-set DSB", round(tune_score, 4))
    m = validate(model, val, device, post, specialists, target)
    print(json.dumps(m, indent=1))
    shutil.copyfile(weights, dest / f"{args.name}.pt")
    card = {
        "name": args.name,
        "description": args.description,
        "default": args.default,
        "architecture": blob["architecture"],
        "config": blob["config"],
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "outputs": ["foreground", "border"],
        "training": {
            "data": "DSB 2018 stage 1 train, corrected (BBBC038, CC0), ../shared/data/dsb2018"
                    + (f", {args.specialist_for} images only" if args.specialist_for else ""),
            "split": f"{len(train)} training images; validation = the {len(val)} "
                     + (f"{args.specialist_for} images of val.txt" if args.specialist_for else "ids of val.txt"),
            "command": args.command,
            # the weights file knows its epoch (best checkpoint, or latest averaged snapshot)
            "epochs": blob.get("epoch") or (hist["best"]["epoch"] if hist.get("best") else len(hist["history"])),
            "epochs_run": len(hist["history"]),
            "seconds": hist["history"][-1]["seconds"],
            "device": args.device_note,
            "history": f"docs/training_history/{args.name}.json (per-epoch loss and validation scores)",
        },
        "postprocess": post,
        "sizing": sizing,
        "validation": {k: m[k] for k in ("dsb_score", "ap50", "f1", "pq", "semantic_iou",
                                         "confidence_auroc", "tp", "fp", "fn", "n_images")},
        "speed": {"seconds_per_mp": m["seconds_per_mp"], "device": speed_device(device, load_start),
                  "includes": "preprocessing excluded; prediction + watershed, no TTA"},
    }
    if "averaged" in blob:
        card["training"]["weights"] = (f"mean of the snapshots {', '.join(blob['averaged'])} "
                                       "(scripts/average_weights.py)")
    if args.continues:
        card["training"] = staged_training(previous, card["training"], run, hist, args.lr)
    if previous.get("specialists") and not args.specialist_for:
        card["specialists"] = previous["specialists"]
        card["validation"]["note"] = ("images of the kinds in `specialists` were segmented by those "
                                      "models, as segment() does")
    if args.specialist_for:
        card["specialist"] = {"kind": args.specialist_for, "parent": args.continues}
        previous.setdefault("specialists", {})[args.specialist_for] = args.name
        (dest / f"{args.continues}.json").write_text(json.dumps(previous, indent=1))
    (dest / f"{args.name}.json").write_text(json.dumps(card, indent=1))
    write_history(args.name, args.continues, run, hist)
    print("wrote", dest / f"{args.name}.pt")


def write_history(name: str, continues: str | None, run: Path, hist: dict) -> None:
    """Per-epoch history in docs/training_history/NAME.json (kept out of the shipped card): the
    parent's stages, then this run."""
    folder = Path(__file__).resolve().parents[1] / "docs" / "training_history"
    parent = folder / f"{continues}.json" if continues else None
    record = json.loads(parent.read_text()) if parent is not None and parent.exists() else {}
    stages = record.get("stages", {})
    if "history" in record:
        stages[continues] = record.pop("history")
    stages[str(run)] = hist["history"]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.json").write_text(json.dumps({"stages": stages}, indent=1))


if __name__ == "__main__":
    main()
