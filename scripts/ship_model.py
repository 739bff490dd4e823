"""Turn a training run into a shipped zoo model: weights, tuned post-processing and a model card.

Post-processing is tuned on 60 *training* images (never on validation or test images); for
models with a distance output both seedings are tuned, a warm restart (``--continues``) also
tries its parent's settings, and the candidate with the best validation score is kept (all are
recorded in the card's ``seeding``). The card's figures are measured on the 58
validation images of ``val.txt`` (and the validation tiles of ``--extra`` sets); the held-out
test splits are scored by ``benchmarks/benchmark.py --update-cards``.

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
from devtools import (  # noqa: E402
    routed_maps,
    routed_splits,
    specialist_models,
    stained_signal,
    tune_postprocess,
    tuning_images,
    validate,
)

from napari_nucleiseg import zoo
from napari_nucleiseg.device import describe, resolve_device
from napari_nucleiseg.inference.sizing import pooled_diameter
from napari_nucleiseg.training.dataset import default_data_dir, read_ids, split_dsb


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
    if "steps" in training:  # steps add up only when every stage counted them
        if "steps" in old:
            training["steps"] += old["steps"]
            training["steps_run"] += old.get("steps_run", old["steps"])
        else:
            del training["steps"], training["steps_run"]
    return training


def speed_device(device, load_start: float) -> str:
    """The card's ``speed.device``: what this run knows of the conditions of its timing."""
    return (f"{describe(device)}; {os.cpu_count()} CPU cores, 1-minute load average {load_start:.2f} "
            "at the start of the run")


def parse_args():
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
    ap.add_argument("--test-file", default=None,
                    help="held-out DSB test ids the run left out (splits/dsb2018_test.txt): kept out of tuning too")
    ap.add_argument("--extra", action="append", default=[], metavar="DIR:SPLIT",
                    help="the extra data sets the run trained on (as train_model.py --extra)")
    ap.add_argument("--licence", default="BSD-3-Clause (trained on CC0 data only)",
                    help="licence of the weights, stated in the card and wherever the model is offered")
    ap.add_argument("--training-data", default=None, help="the card's training.data text")
    ap.add_argument("--dest", default=str(zoo.SHIPPED_DIR), help="where the weights and card go")
    ap.add_argument("--suggest-for", action="append", default=[], metavar="KIND",
                    help="an opt-in model the Segment widget names after segmenting images of this kind")
    ap.add_argument("--steps-per-epoch", type=int, default=None,
                    help="the run's optimiser steps per epoch, to record its steps in the card")
    ap.add_argument("--stain-signal", default="darkest", choices=("darkest", "red"),
                    help="the nucleus signal of stained images the run was trained with (train_model.py)")
    ap.add_argument("--refit", action="store_true",
                    help="the run was trained with train_model.py --refit: the --extra sets' validation "
                         "tiles are training tiles, so the card has no validation row for those sets")
    args = ap.parse_args()
    if args.specialist_for and not args.continues:
        ap.error("--specialist-for needs --continues PARENT")
    return args


def load_data(args, channels: int):
    """DSB training and validation samples (without the test split), plus the extra sets'; the
    extra sets' validation tiles by set, for the card."""
    from train_model import extra_samples

    train, val = split_dsb(args.data, test_file=args.test_file, channels=channels, stain_signal=args.stain_signal)
    extra_val = {}
    for spec in args.extra:
        more_train, more_val = extra_samples(spec, channels, target=19.5, repeat=False,
                                             stain_signal=args.stain_signal, refit=args.refit)
        train = train + more_train
        if more_val:
            extra_val[spec.split(":")[1]] = more_val
    return train, val, extra_val


def choose_postprocess(model, tune, val, device, specialists, first, target, distance: bool,
                       parent: dict | None = None, by_kind: dict | None = None):
    """Post-processing tuned on training images for each seeding (border, and distance for models
    that predict it), and the ``parent`` card's settings of a warm restart as a further candidate;
    the one kept has the best validation DSB score. Returns ``(post, seeding)``, ``seeding`` the
    tuning and validation figures of each candidate."""
    maps = routed_maps(model, tune, device, specialists, first, target, by_kind)
    candidates = {seed: tune_postprocess(maps, tune, seed=seed)
                  for seed in (("border", "distance") if distance else ("border",))}
    if parent and parent not in [post for post, _ in candidates.values()]:  # else validated already
        candidates["parent"] = (parent, None)
    seeding = {}
    for key, (post, tune_score) in candidates.items():
        m = validate(model, val, device, post, specialists, target, by_kind)
        seeding[key] = {"postprocess": post, "tuning_dsb": None if tune_score is None else round(tune_score, 4),
                        "validation_dsb": round(m["dsb_score"], 4), "validation_ap50": round(m["ap50"], 4)}
        print(key, seeding[key], flush=True)
    chosen = max(seeding, key=lambda k: seeding[k]["validation_dsb"])
    return seeding[chosen]["postprocess"], {**seeding, "chosen": chosen}


def main():
    load_start = os.getloadavg()[0]  # the host may be shared: other jobs slow the timing down
    args = parse_args()
    run = Path(args.run)
    hist = json.loads((run / "history.json").read_text())
    weights = Path(args.weights) if args.weights else run / "best.pt"
    model, blob = zoo.load_weights_file(weights)
    device = resolve_device("cpu")
    model = model.to(memory_format=torch.channels_last)
    config = blob.get("config", {})
    train, val, extra_val = load_data(args, config.get("in_channels", 1))
    dest = Path(args.dest)
    previous = json.loads((zoo.SHIPPED_DIR / f"{args.continues}.json").read_text()) if args.continues else {}
    specialists = {} if args.specialist_for else specialist_models(previous)
    tune_from = train
    if specialists and stained_signal(previous, args.stain_signal) != args.stain_signal:
        # stained images are tuned and scored through their specialist: prepared as it takes them
        tune_from, val = routed_splits(previous, args.stain_signal, root=args.data, test_file=args.test_file,
                                       channels=config.get("in_channels", 1))
    by_kind = previous.get("postprocess_by_kind", {})  # a warm restart keeps its parent's settings by kind
    sizing = previous.get("sizing") or training_sizing(train)
    target = sizing["target_diameter"]
    seeding = None
    if args.specialist_for:
        post = previous["postprocess"]
        train = [s for s in train if s.kind == args.specialist_for]
        val = [s for s in val if s.kind == args.specialist_for]
    else:
        first = previous.get("postprocess") or zoo.DEFAULT_POSTPROCESS  # decides the scale of the tuning maps
        post, seeding = choose_postprocess(model, tuning_images(tune_from), val, device, specialists, first, target,
                                           config.get("out_channels", 2) >= 3, previous.get("postprocess"), by_kind)
    m = validate(model, val, device, post, specialists, target, by_kind)
    print(json.dumps(m, indent=1))
    card = make_card(args, blob, model, train, val, hist, post, sizing, m, device, load_start)
    if seeding:
        card["seeding"] = seeding
    if by_kind:
        card["postprocess_by_kind"] = by_kind
        card["postprocess_by_kind_source"] = previous.get("postprocess_by_kind_source", "")
    if args.suggest_for:
        card["suggest_for"] = args.suggest_for
    if args.stain_signal != "darkest":
        card["stain_signal"] = args.stain_signal
    for split, samples in extra_val.items():
        em = validate(model, samples, device, post, specialists, target, by_kind)
        card.setdefault("validation_sets", {})[split] = {k: em[k] for k in ("dsb_score", "ap50", "f1", "pq",
                                                                          "aji", "n_images")}
    history_from = (args.name if args.specialist_for and (zoo.SHIPPED_DIR / f"{args.name}.json").exists()
                    else args.continues)
    finish_card(card, args, blob, previous, run, hist, dest)
    if args.refit:
        card["training"]["refit"] = ("the --extra sets' validation tiles were trained on too (train_model.py "
                                     "--refit); DSB val and every test split stayed out")
    shutil.copyfile(weights, dest / f"{args.name}.pt")
    (dest / f"{args.name}.json").write_text(json.dumps(card, indent=1))
    write_history(args.name, history_from, run, hist)
    print("wrote", dest / f"{args.name}.pt")


def make_card(args, blob, model, train, val, hist, post, sizing, m, device, load_start) -> dict:
    """The model card of a run: architecture, training record, post-processing, validation, speed."""
    config = blob.get("config", {})
    outputs = ["foreground", "border"] + (["distance"] if config.get("out_channels", 2) >= 3 else [])
    data = args.training_data or ("DSB 2018 stage 1 train, corrected (BBBC038, CC0), ../shared/data/dsb2018"
                                  + (f", {args.specialist_for} images only" if args.specialist_for else ""))
    held_out = f"; the {len(read_ids(args.test_file))} ids of {args.test_file} held out" if args.test_file else ""
    epochs = blob.get("epoch") or (hist["best"]["epoch"] if hist.get("best") else len(hist["history"]))
    return {
        "name": args.name,
        "description": args.description,
        "default": args.default,
        "licence": args.licence,
        "architecture": blob["architecture"],
        "config": config,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "inputs": ["nucleus signal" + (" (stained images: the red channel's darkness)"
                                       if args.stain_signal == "red" else "")]
        + (["haematoxylin density (stained images; else the nucleus signal again)"]
           if config.get("in_channels", 1) == 2 else []),
        "outputs": outputs,
        "training": {
            "data": data,
            "split": f"{len(train)} training images; validation = the {len(val)} "
                     + (f"{args.specialist_for} images of val.txt" if args.specialist_for else "ids of val.txt")
                     + held_out,
            "command": args.command,
            # the weights file knows its epoch (best checkpoint, or latest averaged snapshot)
            "epochs": epochs,
            "epochs_run": len(hist["history"]),
            "seconds": hist["history"][-1]["seconds"],
            # steps: those that made the weights kept; steps_run: the whole run
            **({"steps": epochs * args.steps_per_epoch, "steps_run": len(hist["history"]) * args.steps_per_epoch}
               if args.steps_per_epoch else {}),
            "device": args.device_note,
            "history": f"docs/training_history/{args.name}.json (per-epoch loss and validation scores)",
        },
        "postprocess": post,
        "sizing": sizing,
        "validation": {k: m[k] for k in ("dsb_score", "ap50", "f1", "pq", "aji", "semantic_iou",
                                         "confidence_auroc", "tp", "fp", "fn", "n_images")},
        "speed": {"seconds_per_mp": m["seconds_per_mp"], "device": speed_device(device, load_start),
                  "includes": "preprocessing excluded; prediction + watershed, no TTA"},
    }


def finish_card(card: dict, args, blob: dict, previous: dict, run: Path, hist: dict, dest: Path) -> None:
    """Averaged weights, warm-restart stages and specialist links."""
    if "averaged" in blob:
        card["training"]["weights"] = (f"mean of the snapshots {', '.join(blob['averaged'])} "
                                       "(scripts/average_weights.py)")
    if args.continues:
        # a specialist trained again continues its own stages; any other run continues its parent's
        own = zoo.SHIPPED_DIR / f"{args.name}.json"
        base = json.loads(own.read_text()) if args.specialist_for and own.exists() else previous
        card["training"] = staged_training(base, card["training"], run, hist, args.lr)
    if previous.get("specialists") and not args.specialist_for:
        card["specialists"] = previous["specialists"]
        card["validation"]["note"] = ("images of the kinds in `specialists` were segmented by those "
                                      "models, as segment() does")
    if args.specialist_for:
        card["specialist"] = {"kind": args.specialist_for, "parent": args.continues}
        previous.setdefault("specialists", {})[args.specialist_for] = args.name
        (dest / f"{args.continues}.json").write_text(json.dumps(previous, indent=1))


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
