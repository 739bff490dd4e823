"""How the nucleus-size normalisation (``sizing.py``) changes a model's scores, by target diameter.

For each target diameter, every image is segmented as ``segment()`` does (first pass, then a
shrunk second pass when the first finds nuclei larger than target / 0.9), on the 60 training
images that tune post-processing and on the 58 validation images. The shipped target is not
chosen here: it is the median diameter of the training nuclei (``sizing.pooled_diameter``,
written by ``ship_model.py``); this sweep shows how much the choice matters. Writes
docs/sizing.md; every sentence of its reading is computed from the numbers of the run
(``write_report``).

    python experiments/sizing_study.py [--model resunet32]
"""

import argparse
import functools
import sys
from pathlib import Path

import numpy as np
import torch
from skimage.transform import resize

from napari_nucleiseg import zoo
from napari_nucleiseg.evaluation.metrics import evaluate_image
from napari_nucleiseg.inference.kinds import KINDS
from napari_nucleiseg.inference.predict import predict_maps
from napari_nucleiseg.inference.sizing import median_diameter, sized_prediction
from napari_nucleiseg.training.dataset import default_data_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from devtools import kept_below, routed_splits, tuning_images

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sizing.md"
TARGETS = [None, 16.0, 18.0, 20.0, 22.0, 24.0, 27.0, 30.0, 35.0]
TOL = 0.005  # mean AP@0.5 changes smaller than this are reported as "within noise" of off


def sweep(entry, samples, targets) -> dict:
    """target -> per-image (ap50, dsb, zoom, kind); each image's predictions are cached by size."""
    out = {t: [] for t in targets}
    for s in samples:
        model, _, dev = zoo.load_model(entry.for_kind(s.kind), "cpu")
        cache = {}

        def predict(im, cache=cache, model=model, dev=dev):  # bound now: the loop rebinds all three
            if im.shape not in cache:
                with torch.inference_mode():
                    cache[im.shape] = predict_maps(model, im, dev)
            return cache[im.shape]

        for t in targets:
            _, labels, zoom = sized_prediction(predict, s.image, entry.postprocess(s.kind), t)
            r = evaluate_image(s.labels, labels)
            out[t].append((r["ap50"], r["dsb_score"], zoom, s.kind))
    return out


def magnified(entry, samples, factors, target) -> list[tuple]:
    """(factor, images, shrunk, DSB off, DSB auto, AP off, AP auto) for ``samples`` enlarged by each factor.

    Enlarged training-size images stand in for the same specimens at a higher magnification:
    nuclei outside the scale augmentation (0.6-1.6), with known ground truth, without
    touching the validation split. ``shrunk`` counts the images the normalisation shrank.
    """
    out = []
    for f in factors:
        rows, shrunk = [], 0
        for s in samples:
            model, _, dev = zoo.load_model(entry.for_kind(s.kind), "cpu")
            shape = tuple(round(n * f) for n in s.image.shape)
            image = resize(s.image, shape, order=1, preserve_range=True).astype(np.float32)
            truth = resize(s.labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
            predict = functools.partial(predict_maps, model, device=dev)
            with torch.inference_mode():
                runs = [sized_prediction(predict, image, entry.postprocess(s.kind), t) for t in (None, target)]
            scores = [evaluate_image(truth, labels) for _, labels, _ in runs]
            shrunk += runs[1][2] < 1
            rows.append([scores[0]["dsb_score"], scores[1]["dsb_score"], scores[0]["ap50"], scores[1]["ap50"]])
        out.append((f, len(samples), int(shrunk), *np.mean(rows, axis=0)))
    return out


# ---------------------------------------------------------------- report (numbers -> markdown)

def mean_ap(rows, kind=None) -> float:
    """Mean AP@0.5 of sweep rows (of one image kind; nan when there are none)."""
    v = [a for a, _, _, k in rows if kind is None or k == kind]
    return float(np.mean(v)) if v else float("nan")


def target_label(t, shipped) -> str:
    return "off" if t is None else f"{t:g}" + (" (shipped)" if t == shipped else "")


def sweep_table(res: dict, targets, shipped) -> str:
    head = ("| target diameter (px) | set | images shrunk | DSB | AP@0.5 | "
            + " | ".join(f"AP@0.5 {k}" for k in KINDS) + " |\n|" + "---|" * (5 + len(KINDS)))
    lines = []
    for t in targets:
        for name, r in res.items():
            rows = r[t]
            kinds = " | ".join(f"{mean_ap(rows, kind):.3f}" for kind in KINDS)
            dsb = np.mean([d for _, d, _, _ in rows])
            lines.append(f"| {target_label(t, shipped)} | {name} | {sum(z < 1 for _, _, z, _ in rows)} | "
                         f"{dsb:.4f} | {mean_ap(rows):.4f} | {kinds} |")
    return "\n".join([head, *lines])


def mag_table(mag) -> str:
    head = ["| enlarged | images | shrunk | DSB off | DSB auto | AP@0.5 off | AP@0.5 auto |",
            "|---|---|---|---|---|---|---|"]
    return "\n".join(head + [f"| {f:g}x | {n} | {k} | {a:.3f} | {b:.3f} | {c:.3f} | {d:.3f} |"
                             for f, n, k, a, b, c, d in mag])


def paired_lines(res: dict, shipped) -> str:
    """Per image, shipped target vs off: how many images gain or lose AP@0.5."""
    out = []
    for name, r in res.items():
        d = np.array([a for a, *_ in r[shipped]]) - np.array([a for a, *_ in r[None]])
        out.append(f"- {name}: {int((d > 1e-3).sum())} images better, {int((d < -1e-3).sum())} worse, "
                   f"mean change {d.mean():+.4f}")
    return "\n".join(out)


def px(ts) -> str:
    return ", ".join(f"{t:g}" for t in ts) + " px"


def target_verdict(name: str, r: dict, targets) -> str:
    """Which targets beat off on one set (mean AP@0.5 more than TOL above off), which are neutral, which lose."""
    off = mean_ap(r[None])
    change = {t: mean_ap(r[t]) - off for t in targets if t is not None}
    gain = [t for t, c in change.items() if c > TOL]
    loss = [t for t, c in change.items() if c < -TOL]
    flat = [t for t in change if t not in gain and t not in loss]
    lo, hi = min(change.values()), max(change.values())
    span = f"(AP@0.5 {off:.4f} off; changes {lo:+.4f} to {hi:+.4f})"
    every = f"every target from {min(change):g} to {max(change):g} px"
    if len(gain) == len(change):
        return f"on the {name} {every} beats off by more than {TOL} {span}"
    if len(flat) == len(change):
        return f"on the {name} {every} is within ±{TOL} of off {span}"
    if len(loss) == len(change):
        return f"on the {name} {every} does worse than off by more than {TOL} {span}"
    verbs = ((gain, ("beats", "beat"), f"off by more than {TOL}"), (flat, ("is", "are"), f"within ±{TOL} of off"),
             (loss, ("does", "do"), f"worse than off by more than {TOL}"))
    parts = [f"target{'s' * (len(ts) > 1)} {px(ts)} {verb[len(ts) > 1]} {what}" for ts, verb, what in verbs if ts]
    return f"on the {name} " + "; ".join(parts) + f" {span}"


def kind_verdict(name: str, r: dict, shipped) -> str:
    """Which image kind's AP@0.5 changes most at the shipped target, on one set."""
    change = {k: mean_ap(r[shipped], k) - mean_ap(r[None], k) for k in KINDS}
    change = {k: c for k, c in change.items() if np.isfinite(c)}
    if not change:
        return ""
    k = max(change, key=lambda kk: abs(change[kk]))
    if abs(change[k]) <= TOL:
        return f"at the shipped target no image kind of the {name} moves by more than {TOL}"
    return (f"at the shipped target the largest change on the {name} is on {k} images "
            f"({mean_ap(r[None], k):.3f} off, {mean_ap(r[shipped], k):.3f} shipped)")


def mag_verdict(mag, shipped) -> str:
    """What the enlarged images show: how AP@0.5 falls with magnification, how much the normalisation wins back."""
    if not shipped:
        return "The model has no shipped target, so the magnification check did not run."
    if not mag:
        return "No tuning image has nuclei at most the target size, so the magnification check did not run."
    base = next((m for m in mag if m[0] == 1), None)
    if base is None:
        return "The magnification check has no 1x row, so its falls are not computed."
    ref = base[5]
    higher = [m for m in mag if m[0] > 1]
    offs = [m[5] for m in sorted(mag)]
    if all(b < a - TOL for a, b in zip(offs, offs[1:])):
        trend = "falls at every step of magnification"
    elif all(m[5] < ref - TOL for m in higher):
        trend = "is lower than at 1x at every magnification, though not at every step"
    elif any(m[5] < ref - TOL for m in higher):
        trend = "is lower than at 1x only at " + ", ".join(f"{m[0]:g}x" for m in higher if m[5] < ref - TOL)
    else:
        trend = f"does not fall by more than {TOL} with magnification"
    parts = []
    for f, n, shrunk, _, _, ap_off, ap_auto in higher:
        gain, fall = ap_auto - ap_off, ref - ap_off
        what = f"at {f:g}x the normalisation shrank {shrunk} of {n} images and changed AP@0.5 by {gain:+.3f}"
        if fall > TOL and gain > TOL:
            share = gain / fall
            what += (f", {'all' if share >= 1 else f'{share:.0%}'} of the {fall:.3f} fall from 1x"
                     + (" (and more)" if share > 1 else ""))
        elif fall > TOL:
            what += f", none of the {fall:.3f} fall from 1x"
        parts.append(what)
    return (f"On the enlarged training images (which the validation split never touched) AP@0.5 with the "
            f"normalisation off {trend} ({', '.join(f'{m[0]:g}x {m[5]:.3f}' for m in sorted(mag))}); "
            + "; ".join(parts) + ".")


def reading(res: dict, targets, shipped, mag) -> str:
    names = list(res)
    sentences = [target_verdict(n, res[n], targets) for n in names]
    kinds = [s for s in (kind_verdict(n, res[n], shipped) for n in names) if s] if shipped else []
    text = "Reading (computed from the tables above): " + "; ".join(sentences) + "."
    if kinds:
        joined = "; ".join(kinds)
        text += " " + joined[0].upper() + joined[1:] + "."
    best = {n: max((t for t in targets if t is not None), key=lambda t: mean_ap(res[n][t])) for n in names}
    text += " Highest AP@0.5: " + "; ".join(f"{n} {best[n]:g} px ({mean_ap(res[n][best[n]]):.4f})"
                                            for n in names) + "."
    return (text + " " + mag_verdict(mag, shipped) + " Enlarging images whose nuclei are much smaller than the "
            "target (`sizing.ENLARGE_BELOW`) is measured in [training_log.md](training_log.md) "
            "(\"Enlarging images with small nuclei\").\n")


def write_report(model_name: str, shipped, targets, res: dict, mag, n_small: int) -> str:
    """The markdown of docs/sizing.md from the sweep (``res``) and the magnification check (``mag``)."""
    table = sweep_table(res, targets, shipped)
    paired = paired_lines(res, shipped) if shipped else "- no shipped target: nothing to pair"
    return (
        f"# Nucleus-size normalisation ({model_name})\n\n"
        "`segment()` measures the median nucleus diameter of a first pass and, when it is larger than "
        "the model's target / 0.9, segments the image again shrunk to the target, with the maps scaled "
        "back up so outlines and measurements stay at full resolution (`sizing.py`). The shipped target "
        f"({shipped} px) is the median diameter of the training nuclei, not a tuned value.\n\n"
        f"`python experiments/sizing_study.py --model {model_name}`\n\n{table}\n\n"
        f"Per image, shipped target vs off (AP@0.5):\n\n{paired}\n\n"
        "## Higher magnification, without the validation split\n\n"
        f"The first {n_small} tuning images whose nuclei are at most the target size, enlarged (bilinear; "
        "labels nearest) as if imaged at a higher magnification, segmented with the size normalisation off "
        f"and on (`auto`, shipped target):\n\n{mag_table(mag)}\n\n"
        + reading(res, targets, shipped, mag)
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="resunet32")
    ap.add_argument("--data", default=str(default_data_dir()))
    args = ap.parse_args()
    torch.set_num_threads(2)
    entry = zoo.get_entry(args.model)
    shipped = entry.target_diameter()
    targets = sorted(set(TARGETS[1:] + ([shipped] if shipped else [])))
    targets = [None] + targets
    train, val = routed_splits(entry.card, entry.stain_signal(), root=args.data)
    tune = tuning_images(train)
    res = {f"training ({len(tune)} tuning images)": sweep(entry, tune, targets),
           f"validation ({len(val)})": sweep(entry, val, targets)}
    print(sweep_table(res, targets, shipped))
    small = [s for s in tune if (median_diameter(s.labels) or 99) <= shipped][:20] if shipped else []
    mag = magnified(entry, small, (1.0, 1.5, 2.0, 3.0), shipped) if small else []
    print(mag_table(mag))
    text = write_report(args.model, shipped, targets, res, mag, len(small))
    print(text.rsplit("\n\n", 1)[-1])
    DOCS.write_text(kept_below(text, DOCS.read_text() if DOCS.exists() else ""))


if __name__ == "__main__":
    main()
