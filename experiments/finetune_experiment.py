"""Does fine-tuning help? One command, under 10 minutes on a 2-core CPU; writes docs/finetuning.md.

1. Sorts the shared DSB images into types by image properties alone: ``stained tissue``
   (colour: H&E and similar), ``bright-field grey`` (grey, bright background) and
   ``fluorescence`` (grey, dark background).
2. Scores the shipped default model on the validation split, per type, and picks the type
   it does worst on (at least two validation images; ``--type`` overrides).
3. Fine-tunes it with :func:`napari_nucleiseg.training.finetune.fine_tune` (the function behind the
   widget and ``nucleiseg finetune``) on 1-2 corrected (ground-truth) images of that type
   from the *training* split, for at most 5 minutes.
4. Reports the DSB score before and after on the *other* images of that type (the
   validation images of the type: never used for training or for choosing weights) and on
   the rest of the validation split (all other types: forgetting).

Usage::

    python experiments/finetune_experiment.py            # writes docs/finetuning.md
    python experiments/finetune_experiment.py --minutes 2 --out /tmp/ft.md
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TYPES = ("stained tissue", "bright-field grey", "fluorescence")
LOW_LIGHT = "low-light fluorescence"
LOW_LIGHT_PHOTONS = 8.0
MONUSEG = "H&E tissue (MoNuSeg)"


def low_light(image: np.ndarray, seed: int, photons: float = LOW_LIGHT_PHOTONS) -> np.ndarray:
    """A fluorescence image as if taken with far less light: shot noise of about ``photons``
    photons at the brightest nuclei (1-99.8 percentile span), one background photon, camera
    read noise of 1 (a synthetic domain shift; seeded)."""
    rng = np.random.default_rng(seed)
    g = image[..., :3].max(-1) if image.ndim == 3 else image
    g = g.astype(np.float32)
    lo, hi = np.percentile(g, (1, 99.8))
    g = np.clip((g - lo) / max(hi - lo, 1e-6), 0, None)
    return (rng.poisson(g * photons + 1.0) + rng.normal(0.0, 1.0, g.shape)).astype(np.float32)


def add_low_light(items: list[dict], photons: float = LOW_LIGHT_PHOTONS) -> list[dict]:
    """Low-light copies of every fluorescence image (same split), as a type of their own."""
    return [{**it, "image": low_light(it["image"], seed=i, photons=photons), "type": LOW_LIGHT,
             "id": it["id"] + "-lowlight"}
            for i, it in enumerate(items) if it["type"] == "fluorescence"]


def load_monuseg(folder: Path) -> list[dict]:
    """The MoNuSeg 2018 H&E tiles outside its test split (``splits/monuseg2018_test.txt`` is never
    touched): those of ``splits/monuseg2018_val.txt`` are scored, the others may be corrected.
    Non-commercial data (CC BY-NC-SA): the fine-tuned model is the experiment's, never shipped."""
    from napari_nucleiseg.io.images import read_image, read_labels
    from napari_nucleiseg.training.dataset import find_pairs, read_ids

    test, val = (set(read_ids(ROOT / "splits" / f"monuseg2018_{s}.txt")) for s in ("test", "val"))
    return [{"id": name, "image": read_image(ip), "labels": read_labels(lp), "type": MONUSEG, "val": name in val}
            for name, ip, lp in find_pairs(folder) if name not in test]


def image_type(image: np.ndarray) -> str:
    """Type of a DSB image from its pixels (``kinds.image_kind``), in this report's words."""
    from napari_nucleiseg.inference.kinds import image_kind

    return {"stained": "stained tissue", "brightfield": "bright-field grey"}.get(image_kind(image), "fluorescence")


def load_split(data: Path):
    """Raw images, labels and types of the DSB training folder, split by ``val.txt``."""
    from napari_nucleiseg.io.images import read_image, read_labels
    from napari_nucleiseg.training.dataset import find_pairs, read_ids

    val_ids = set(read_ids(data / "val.txt"))
    items = []
    for name, ip, lp in find_pairs(data / "train"):
        img = read_image(ip)
        items.append({"id": name, "image": img, "labels": read_labels(lp), "type": image_type(img),
                      "val": name in val_ids})
    return items


def score(model_name: str, items, device) -> list[float]:
    """DSB score of a zoo model on each item, segmented by ``segment`` (specialists included)."""
    from napari_nucleiseg import segment
    from napari_nucleiseg.evaluation.metrics import evaluate_image

    return [float(evaluate_image(it["labels"], segment(it["image"], model=model_name, device=device).labels)
                  ["dsb_score"]) for it in items]


def blend_row(b: float, res, same, rest, device) -> dict:
    """Mean DSB change on the type and on the rest for the fine-tuned weights blended back by ``b``."""
    from napari_nucleiseg import zoo
    from napari_nucleiseg.training.finetune import blend_states

    start = next(e for e in zoo.list_models() if e.weights.name == res.entry.card["parent_weights"])
    base_model, _ = zoo.load_weights_file(start.weights)  # where fine-tuning started
    tuned, _ = zoo.load_weights_file(res.entry.weights)
    base_model.load_state_dict(blend_states(base_model.state_dict(), tuned.state_dict(), b))
    name = f"{res.name}-blend{int(round(b * 100))}"
    card = {k: v for k, v in res.entry.card.items() if k not in ("name", "architecture", "config")}
    zoo.save_user_model(name, base_model, res.entry.card["architecture"], res.entry.card.get("config", {}),
                        {**card, "description": f"experiment: blend {b}"})  # sizing, settings by kind, routes
    try:
        same_after, rest_after = score(name, same, device), score(name, rest, device)
    finally:
        zoo.delete_user_model(name)
    return {"blend": b,
            "type_change": float(np.mean(same_after) - np.mean([i["before"] for i in same])),
            "rest_change": float(np.mean(rest_after) - np.mean([i["before"] for i in rest]))}


def parse_args(argv, data_dir: Path, default_lr: float) -> argparse.Namespace:
    """The command line (``--minutes`` above 5 is refused unless only re-writing a report)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=data_dir)
    ap.add_argument("--model", default="default", help="base model (default: the shipped default)")
    ap.add_argument("--type", choices=TYPES, default=None, help="image type (default: the worst one)")
    ap.add_argument("--low-light", action="store_true",
                    help=f"fine-tune for a synthetic domain shift instead: '{LOW_LIGHT}', the fluorescence "
                         f"images with the shot noise of about {LOW_LIGHT_PHOTONS:g} photons (see low_light)")
    ap.add_argument("--monuseg", action="store_true",
                    help=f"fine-tune for '{MONUSEG}' instead: corrected tiles and scored tiles from the MoNuSeg "
                         "tiles outside its test split (../shared/data/nc; load_monuseg)")
    ap.add_argument("--photons", type=float, default=LOW_LIGHT_PHOTONS,
                    help="with --low-light: photons at the brightest nuclei (fewer: a harsher shift)")
    ap.add_argument("--n-train", type=int, default=2, choices=(1, 2), help="corrected images to train on")
    ap.add_argument("--minutes", type=float, default=5.0, help="fine-tuning time budget (at most 5)")
    ap.add_argument("--lr", type=float, default=default_lr)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--replay-per-type", type=int, default=3,
                    help="unlabelled training-split images of each other type handed over as the user's "
                         "other images (replay, labelled by the base model); 0 = synthetic replay only")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--also-seen", action="store_true",
                    help="also score the other training-split images of the type (seen by the base model)")
    ap.add_argument("--also-blend", type=float, nargs="*", default=[],
                    help="also score the fine-tuned weights blended back towards the base "
                         "(base + B * (fine-tuned - base), as fine_tune(blend=B) would save them)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "finetuning.md")
    ap.add_argument("--report-from", type=Path, default=None, metavar="JSON",
                    help="only re-write the report from the JSON of an earlier run")
    args = ap.parse_args(argv)
    if not args.report_from and args.minutes > 5:
        ap.error("the experiment allows at most 5 minutes of fine-tuning")
    return args


def score_before(base_name: str, items, val, low_light_too: bool, device, photons: float = LOW_LIGHT_PHOTONS):
    """The base model's DSB on the validation split (stored as each item's ``before``), per type;
    with ``low_light_too`` also on the low-light copies. Returns (scores, per_type, shifted, val_shifted)."""
    before_val = score(base_name, val, device)
    for it, s in zip(val, before_val):
        it["before"] = s
    per_type = {t: [it["before"] for it in val if it["type"] == t] for t in TYPES}
    for t, v in per_type.items():
        print(f"  {t}: {len(v)} validation images, DSB {np.mean(v) if v else float('nan'):.3f}", flush=True)
    shifted, val_shifted = [], []
    if low_light_too:
        shifted = add_low_light(items, photons)
        val_shifted = [it for it in shifted if it["val"]]
        for it, s in zip(val_shifted, score(base_name, val_shifted, device)):
            it["before"] = s
        per_type[LOW_LIGHT] = [it["before"] for it in val_shifted]
        print(f"  {LOW_LIGHT}: {len(val_shifted)} validation images, "
              f"DSB {np.mean(per_type[LOW_LIGHT]):.3f}", flush=True)
    return before_val, per_type, shifted, val_shifted


def worst_type(per_type: dict) -> str:
    """The real type with the lowest mean DSB among those with at least two validation images."""
    return min((t for t in TYPES if len(per_type[t]) >= 2), key=lambda t: np.mean(per_type[t]))


def pick_images(items, pool, kind: str, n_train: int, replay_per_type: int, seed: int):
    """The corrected images (the first ``n_train`` of ``pool`` by a seeded shuffle) and the user's
    other, unlabelled images (a seeded pick of ``replay_per_type`` per other type; same generator)."""
    rng = np.random.default_rng(seed)
    chosen = [pool[i] for i in rng.permutation(len(pool))[:n_train]]
    others = []
    for t in TYPES:
        if t != kind:
            cands = [it for it in items if not it["val"] and it["type"] == t]
            others += [cands[i] for i in rng.permutation(len(cands))[:replay_per_type]]
    return chosen, others


def score_after(model_name: str, val, val_shifted, device) -> list[float]:
    """The fine-tuned model's DSB on the validation split and the low-light copies (stored as ``after``)."""
    after_val = score(model_name, val, device)
    for it, s in zip(val, after_val):
        it["after"] = s
    for it, s in zip(val_shifted, score(model_name, val_shifted, device)):
        it["after"] = s
    return after_val


def summary_row(label: str, before, after) -> dict:
    b, a = float(np.mean(before)), float(np.mean(after))
    return {"set": label, "images": len(before), "before": b, "after": a, "change": a - b}


def result_rows(kind: str, val, val_shifted, before_val, after_val, seen_before, seen_after):
    """The report's rows: the type, the rest (and each other type), the whole split, the seen images.
    Returns (rows, same, rest): ``same`` and ``rest`` are the validation items of the two first rows."""
    same = [it for it in val + val_shifted if it["type"] == kind]
    rest = [it for it in val if it["type"] != kind]
    rows = [summary_row(f"other {kind} images (validation split)", [i["before"] for i in same],
                        [i["after"] for i in same]),
            summary_row("rest of the validation split", [i["before"] for i in rest], [i["after"] for i in rest])]
    for t in TYPES:
        if t != kind and any(i["type"] == t for i in rest):
            sub = [i for i in rest if i["type"] == t]
            rows.append(summary_row(f"  of which {t}", [i["before"] for i in sub], [i["after"] for i in sub]))
    rows.append(summary_row("whole validation split", before_val, after_val))
    if seen_before:
        rows.append(summary_row(f"other {kind} images (training split, not used for fine-tuning)",
                                seen_before, seen_after))
    return rows, same, rest


def build_result(args, base, res, kind, chosen, others, load, rows, same, per_type, blends, total,
                 device_text) -> dict:
    """Everything the report says, as the JSON written next to it."""
    return {
        "base_model": base.name, "base_weights": base.weights.name, "type": kind,
        "start_weights": res.entry.card.get("parent_weights", base.weights.name),
        "routes": res.entry.card.get("specialists", {}),
        "base_description": base.card.get("description", ""), "load_average": round(load, 2),
        "cores": os.cpu_count(), "cpu": platform.processor() or platform.machine(),
        "fine_tune_images": [c["id"] for c in chosen], "fine_tune_seconds": round(res.seconds, 1),
        "replay_images": [o["id"] for o in others],
        "steps": res.steps_done, "lr": args.lr, "minutes": args.minutes, "device": device_text,
        "rows": rows, "per_image": [{"id": i["id"], "type": i["type"], "before": i["before"], "after": i["after"]}
                                    for i in same],
        "total_seconds": round(total, 1),
        "per_type_before": {t: [float(np.mean(v)), len(v)] for t, v in per_type.items() if v},
        "settings": res.entry.card["finetune"]["settings"],
        "blends": blends,
        "command_args": {"minutes": args.minutes, "type": args.type, "replay_per_type": args.replay_per_type,
                         "low_light": args.low_light, "photons": args.photons, "monuseg": args.monuseg},
    }


def main(argv=None) -> int:
    from napari_nucleiseg import zoo
    from napari_nucleiseg.device import describe, resolve_device
    from napari_nucleiseg.training.dataset import default_data_dir
    from napari_nucleiseg.training.finetune import DEFAULT_LR, fine_tune

    args = parse_args(argv, default_data_dir(), DEFAULT_LR)
    if args.report_from:
        write_report(args.out, json.loads(args.report_from.read_text()))
        return 0
    t_start = time.perf_counter()
    # user models go to a scratch folder: the experiment leaves the user's models alone
    scratch = tempfile.mkdtemp(prefix="nucleiseg-ft-")
    atexit.register(shutil.rmtree, scratch, True)
    os.environ["NUCLEISEG_USER_DIR"] = scratch
    device = resolve_device(args.device)
    base = zoo.get_entry(args.model)

    items = load_split(args.data)
    val = [it for it in items if it["val"]]
    print(f"{len(items)} images, {len(val)} validation; base model {base.name}", flush=True)
    before_val, per_type, shifted, val_shifted = score_before(base.name, items, val, args.low_light, device,
                                                                   args.photons)
    kind = args.type or worst_type(per_type)
    if args.low_light:
        kind = LOW_LIGHT
    if args.monuseg:
        kind, extra = MONUSEG, load_monuseg(args.data.parent / "nc" / "monuseg2018")
        scored = [it for it in extra if it["val"]]
        for it, s in zip(scored, score(base.name, scored, device)):
            it["before"] = s
        shifted, val_shifted = shifted + extra, val_shifted + scored
        per_type[MONUSEG] = [it["before"] for it in scored]
        print(f"  {MONUSEG}: {len(scored)} validation tiles, DSB {np.mean(per_type[MONUSEG]):.3f}", flush=True)

    # the corrected images: training-split images of that type, the first by a seeded shuffle
    pool = [it for it in items + shifted if not it["val"] and it["type"] == kind]
    if len(pool) < args.n_train:
        print(f"not enough training images of type {kind!r}", file=sys.stderr)
        return 1
    chosen, others = pick_images(items, pool, kind, args.n_train, args.replay_per_type, args.seed)
    print(f"type {kind!r}; fine-tuning on {[c['id'][:10] for c in chosen]} for {args.minutes} min", flush=True)
    print(f"replaying {len(others)} unlabelled images of other types", flush=True)
    res = fine_tune(base.name, [(c["image"], c["labels"]) for c in chosen], time_budget_s=args.minutes * 60,
                    lr=args.lr, device=device, seed=args.seed, name="experiment",
                    replay_images=[o["image"] for o in others],
                    image_names=[c["id"] for c in chosen], log=lambda s: print(" ", s, flush=True))
    load = os.getloadavg()[0]  # other jobs on the machine slow fine-tuning down (fewer steps)
    after_val = score_after(res.name, val, val_shifted, device)

    others_seen = [it for it in pool if it not in chosen] if args.also_seen else []
    seen_before = score(base.name, others_seen, device) if others_seen else []
    seen_after = score(res.name, others_seen, device) if others_seen else []
    rows, same, rest = result_rows(kind, val, val_shifted, before_val, after_val, seen_before, seen_after)
    blends = [blend_row(b, res, same, rest, device) for b in args.also_blend]
    total = time.perf_counter() - t_start
    result = build_result(args, base, res, kind, chosen, others, load, rows, same, per_type, blends, total,
                          describe(device))
    print(json.dumps(result, indent=1), flush=True)
    write_report(args.out, result)
    print(f"wrote {args.out} in {total:.0f} s", flush=True)
    print(verdict(result), flush=True)
    return 0


TARGET_GAIN = 0.10  # the aim: at least this much DSB on the type ...
TARGET_DROP = 0.02  # ... and no larger drop than this on the rest of the validation split
RELATED = ("finetuning_brightfield", "finetuning_stained")  # runs on the real DSB types, linked from each report


def meets_target(rows: list[dict]) -> bool:
    """Whether a run's first two rows (the type, the rest of the split) meet both aims."""
    return rows[0]["change"] >= TARGET_GAIN and rows[1]["change"] >= -TARGET_DROP


def verdict(result: dict) -> str:
    """The target verdict with the numbers it follows from."""
    typ, rest = result["rows"][0], result["rows"][1]
    subs = [r for r in result["rows"] if r["set"].startswith("  of which ")]
    text = (f"Target (+{TARGET_GAIN:.2f} on the type, no drop larger than {TARGET_DROP:.2f} on the rest): "
            f"**{'met' if meets_target(result['rows']) else 'not met'}**. The other {result['type']} images "
            f"changed by {typ['change']:+.3f} (aim +{TARGET_GAIN:.2f}: "
            f"{'reached' if typ['change'] >= TARGET_GAIN else 'missed'}), the rest of the validation split by "
            f"{rest['change']:+.3f} (aim no drop larger than {TARGET_DROP:.2f}: "
            f"{'kept' if rest['change'] >= -TARGET_DROP else 'missed'})")
    if subs:
        worst = min(subs, key=lambda r: r["change"])
        name = worst["set"].removeprefix("  of which ")
        text += ("; " + (f"the largest drop among the other types is {-worst['change']:.3f}, on {name}"
                         if round(worst["change"], 3) < 0 else "no other type's mean DSB fell (to 3 decimals)"))
    return text + "."


def per_image_summary(per_image: list[dict], tol: float = 0.001) -> str:
    """How many images of the type gained, lost or kept their DSB score (by more than ``tol``)."""
    d = np.array([p["after"] - p["before"] for p in per_image])
    if not len(d):
        return "No validation image of the type was scored."
    return (f"{int((d > tol).sum())} of {len(d)} images gained more than {tol}, {int((d < -tol).sum())} lost more "
            f"than {tol}; the changes run from {d.min():+.3f} to {d.max():+.3f} (median {np.median(d):+.3f}).")


def command_lines(out: Path, cmd: dict) -> list[str]:
    return [
        "# Fine-tuning: does it help?",
        "",
        "Generated by `experiments/finetune_experiment.py`; reproduce with",
        "",
        "```",
        "python experiments/finetune_experiment.py"
        + (f" --minutes {cmd['minutes']:g}" if cmd["minutes"] != 5 else "")
        + (f" --type '{cmd['type']}'" if cmd["type"] else "")
        + (" --low-light" if cmd.get("low_light") else "")
        + (" --monuseg" if cmd.get("monuseg") else "")
        + (f" --photons {cmd['photons']:g}" if cmd.get("low_light") and cmd.get("photons", LOW_LIGHT_PHOTONS)
           != LOW_LIGHT_PHOTONS else "")
        + (f" --out {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}"
           if out.name != "finetuning.md" else ""),
        "```",
        "",
    ]


def routes_text(result: dict) -> str:
    routes = result["routes"]
    if not routes:
        return ("the new model segments every type with the fine-tuned weights, so the rest of the split "
                "shows any forgetting.")
    return ("the new model hands " + ", ".join(f"{k} images to `{v}`" for k, v in routes.items())
            + " (the models that segmented them before), so those types' rows can only change through the "
            "fluorescence/bright-field/stained detection, never through the fine-tuned weights.")


def type_choice_text(result: dict) -> str:
    kind, cmd = result["type"], result["command_args"]
    if kind == LOW_LIGHT:
        return (f". The type fine-tuned for is **{kind}**: a synthetic domain shift, the fluorescence images of the "
                f"split as if taken with far less light (shot noise of about "
                f"{cmd.get('photons', LOW_LIGHT_PHOTONS):g} photons at the "
                "brightest nuclei, one background photon, read noise 1; `low_light()` in the script, seeded), "
                "as in fast or gentle live-cell imaging. The rest of the validation split is the real, unshifted "
                "images.")
    if kind == MONUSEG:
        return (f". The type fine-tuned for is **{kind}**: the MoNuSeg 2018 tiles outside its test split "
                "(non-commercial data, CC BY-NC-SA; the fine-tuned model is this experiment's, never shipped). "
                "Two tiles are corrected, the validation tiles of `splits/monuseg2018_val.txt` are scored; "
                "the rest of the rows are the DSB validation split.")
    if not cmd.get("type"):
        return f". The worst type, **{kind}**, is the one fine-tuned for."
    return f". The type fine-tuned for is **{kind}** (chosen with `--type`)."


def setup_lines(result: dict) -> list[str]:
    cmd, settings = result["command_args"], result["settings"]
    return [
        "## Setup",
        f"- Base model: `{result['base_model']}` (`{result['base_weights']}`, the shipped default: "
        f"{result['base_description']}). Fine-tuning started from `{result['start_weights']}`, the weights "
        "the base model uses for this type of image; " + routes_text(result),
        "- Image types are found from the pixels alone (`kinds.image_kind`): a bright background "
        "and colour = stained tissue (H&E and similar), a bright grey background = bright-field grey, "
        "else fluorescence.",
        "- Base model on the DSB validation split, per type: "
        + ", ".join(f"{t} {m:.3f} ({n} images)" for t, (m, n) in result["per_type_before"].items())
        + type_choice_text(result),
        f"- Corrected images: {len(result['fine_tune_images'])} ground-truth images of that type from the training "
        f"split ({', '.join('`' + i[:12] + '`' for i in result['fine_tune_images'])}, a seeded random pick).",
        f"- Fine-tuning: `fine_tune()` (the function behind the Fine-tune widget and `nucleiseg finetune`) with "
        f"its default settings, {cmd['minutes']:g} min budget on {result['device']}: {result['steps']} steps of "
        f"{settings['batch_size']} random {settings['crop']}x{settings['crop']} augmented crops, learning rate "
        f"{result['lr']:g} (warm-up + cosine), frozen batch-norm statistics, weights pulled towards the base "
        f"model, and {settings.get('replay', 0):.0%} of every batch drawn from built-in synthetic fluorescence "
        f"fields labelled by {'the base model' if settings.get('replay_labels') == 'base model' else 'their truth'}"
        " (replay, against forgetting)"
        + (f", together with {len(result.get('replay_images', []))} unlabelled training-split images of the other "
           "types (the user's other images, `replay_images=`), also labelled by the base model"
           if result.get("replay_images") else "")
        + ". No validation images were used, so the weights kept are those with the "
        "lowest smoothed training loss"
        + (f"; of their change from the base model {settings['blend']:.0%} is kept (`blend`)."
           if settings.get("blend", 1.0) < 1 else "."),
        "- Scored: DSB score (mean over IoU thresholds 0.5-0.95 of TP/(TP+FP+FN), averaged over images) on the "
        "*other* images of the type in the validation split (never seen by fine-tuning nor used to choose "
        "weights) and on the rest of the validation split (to catch forgetting).",
        "",
    ]


def blend_lines(blends: list[dict]) -> list[str]:
    if not blends:
        return []
    ok = [b for b in blends if b["type_change"] >= TARGET_GAIN and b["rest_change"] >= -TARGET_DROP]
    return (["The same fine-tuned weights blended back towards the base (`fine_tune(blend=B)`):", "",
             "| blend | change on the type | change on the rest |", "|---:|---:|---:|"]
            + [f"| {b['blend']:.2f} | {b['type_change']:+.3f} | {b['rest_change']:+.3f} |" for b in blends]
            + ["", ("Blends that meet both aims: " + ", ".join(f"{b['blend']:.2f}" for b in ok) + "."
                    if ok else "No blend meets both aims."), ""])


def result_lines(result: dict) -> list[str]:
    lines = ["## Result", "", "| images | n | DSB before | DSB after | change |", "|---|---:|---:|---:|---:|"]
    rest = result["rows"][1]
    for r in result["rows"]:
        if r["set"] == "whole validation split" and (r["images"], r["before"]) == (rest["images"], rest["before"]):
            continue  # a synthetic type is not part of the split: "rest" is already all of it
        lines.append(f"| {r['set']} | {r['images']} | {r['before']:.3f} | {r['after']:.3f} | {r['change']:+.3f} |")
    lines += ["", verdict(result), ""] + blend_lines(result.get("blends"))
    lines += ["Per image of the type (validation split): " + per_image_summary(result["per_image"]), "",
              "| image | before | after |", "|---|---:|---:|"]
    lines += [f"| `{p['id'][:16]}` | {p['before']:.3f} | {p['after']:.3f} |" for p in result["per_image"]]
    busy = result["load_average"] > (result["cores"] or 1) + 0.5
    lines += [
        "",
        f"Fine-tuning took {result['fine_tune_seconds']:.0f} s; the whole experiment {result['total_seconds']:.0f} s "
        f"({result['cpu']}, {result['cores']} cores, 1-minute load average {result['load_average']:.1f} at the end "
        "of fine-tuning"
        + (": above the core count, so other jobs shared the CPU and fewer steps fitted in the budget" if busy
           else "") + ").",
        "",
    ]
    return lines


def howto_lines(result: dict) -> list[str]:
    return [
        "## Doing the same yourself",
        "",
        "In napari: correct the `<image> nuclei` layer (paint, erase, fill), open *Layers > Segment > Fine-tune "
        "Model*, pick the image and the corrected labels (optionally a Shapes layer with rectangles around the "
        "corrected parts and a held-out validation pair), set steps or minutes and press *Fine-tune*. The loss "
        "(and validation) curve updates live, *Cancel* keeps the best weights reached, and the new model appears "
        "in the Segment Nuclei widget at once.",
        "",
        "From the command line, with the same function:",
        "",
        "```",
        f"nucleiseg finetune --model {result['base_model']} --image IMG.png --labels IMG_labels.tif "
        f"[--image ... --labels ...] --name my-model --minutes {result['command_args']['minutes']:g} "
        "[--val-image V.png --val-labels V_labels.tif]",
        "nucleiseg segment --model my-model ...",
        "```",
        "",
        "The card of the saved model (`<user data>/napari-nucleiseg/models/my-model.json`) records the parent "
        "model, the images, the settings and both curves.",
        "",
        "How the default settings were chosen (replay against forgetting, and what did not work): "
        "`docs/finetuning_ablation.md`.",
        "",
    ]


def related_lines(out: Path, docs: Path = ROOT / "docs") -> list[str]:
    """What the other reports' JSON files say (runs on the real DSB types), read when this report is written."""
    runs = []
    for stem in RELATED:
        path = docs / f"{stem}.json"
        if not path.exists() or path.resolve() == out.with_suffix(".json").resolve():
            continue
        r = json.loads(path.read_text())
        how = (f"`--type '{r['command_args']['type']}'`" if r["command_args"].get("type")
               else f"the default run, whose worst type was {r['type']}")
        runs.append((f"`docs/{stem}.md` ({how}, base `{r['base_weights']}`: {r['rows'][0]['change']:+.3f} on the "
                     f"type, {r['rows'][1]['change']:+.3f} on the rest, target "
                     f"{'met' if meets_target(r['rows']) else 'not met'})", meets_target(r["rows"])))
    lines = []
    if runs:
        met = sum(m for _, m in runs)
        said = ("it reaches" if met else "it does not reach") if len(runs) == 1 else (
            "none reaches" if not met else "all reach" if met == len(runs) else f"{met} of {len(runs)} reach")
        lines += ["The same experiment on the real DSB types: " + " and ".join(t for t, _ in runs)
                  + f"; {said} the +{TARGET_GAIN:.2f} aim with no drop larger than {TARGET_DROP:.2f}.", ""]
    return lines + [
        "Each report is one run: one seeded pick of two corrected images. The low-light run repeated with "
        "other seeds, to show how much the result depends on which two images were corrected: "
        "`docs/finetuning_repeats.md`.",
        "",
    ]


def write_report(out: Path, result: dict) -> None:
    """Write the markdown report (and its JSON) with the table and the command that reproduces it."""
    lines = (command_lines(out, result["command_args"]) + setup_lines(result) + result_lines(result)
             + howto_lines(result) + related_lines(out))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))
    out.with_suffix(".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
