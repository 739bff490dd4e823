"""How the nucleus-size normalisation (``sizing.py``) changes a model's scores, by target diameter.

For each target diameter, every image is segmented as ``segment()`` does (first pass, then a
shrunk second pass when the first finds nuclei larger than target / 0.9), on the 60 training
images that tune post-processing and on the 58 validation images. The shipped target is not
chosen here: it is the median diameter of the training nuclei (``sizing.pooled_diameter``,
written by ``ship_model.py``); this sweep shows how much the choice matters. Writes
docs/sizing.md.

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
from napari_nucleiseg.inference.predict import predict_maps
from napari_nucleiseg.inference.preprocess import KINDS
from napari_nucleiseg.inference.sizing import median_diameter, sized_prediction
from napari_nucleiseg.training.dataset import default_data_dir, split_dsb

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from devtools import tuning_images

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sizing.md"
TARGETS = [None, 16.0, 18.0, 20.0, 22.0, 24.0, 27.0, 30.0, 35.0]


def sweep(entry, samples, targets) -> dict:
    """target -> per-image (ap50, dsb, zoom, kind); each image's predictions are cached by size."""
    post = entry.postprocess()
    out = {t: [] for t in targets}
    for s in samples:
        model, _, dev = zoo.load_model(entry.for_kind(s.kind), "cpu")
        cache = {}

        def predict(im):
            if im.shape not in cache:
                with torch.inference_mode():
                    cache[im.shape] = predict_maps(model, im, dev)
            return cache[im.shape]

        for t in targets:
            _, labels, zoom = sized_prediction(predict, s.image, post, t)
            r = evaluate_image(s.labels, labels)
            out[t].append((r["ap50"], r["dsb_score"], zoom, s.kind))
    return out


def magnified(entry, samples, factors, target) -> list[tuple]:
    """(factor, images, DSB off, DSB auto, AP off, AP auto) for ``samples`` enlarged by each factor.

    Enlarged training-size images stand in for the same specimens at a higher magnification:
    nuclei outside the scale augmentation (0.6-1.6), with known ground truth, without
    touching the validation split.
    """
    post = entry.postprocess()
    out = []
    for f in factors:
        rows = []
        for s in samples:
            model, _, dev = zoo.load_model(entry.for_kind(s.kind), "cpu")
            shape = tuple(round(n * f) for n in s.image.shape)
            image = resize(s.image, shape, order=1, preserve_range=True).astype(np.float32)
            truth = resize(s.labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
            predict = functools.partial(predict_maps, model, device=dev)
            with torch.inference_mode():
                scores = [evaluate_image(truth, sized_prediction(predict, image, post, t)[1]) for t in (None, target)]
            rows.append([scores[0]["dsb_score"], scores[1]["dsb_score"], scores[0]["ap50"], scores[1]["ap50"]])
        out.append((f, len(samples), *np.mean(rows, axis=0)))
    return out


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
    train, val = split_dsb(args.data)
    tune = tuning_images(train)
    res = {"training (60 tuning images)": sweep(entry, tune, targets), "validation (58)": sweep(entry, val, targets)}
    head = ("| target diameter (px) | set | images shrunk | DSB | AP@0.5 | "
            + " | ".join(f"AP@0.5 {k}" for k in KINDS) + " |\n|" + "---|" * (5 + len(KINDS)))
    lines = []
    for t in targets:
        for name, r in res.items():
            rows = r[t]
            label = "off" if t is None else f"{t:g}" + (" (shipped)" if t == shipped else "")
            kinds = " | ".join(f"{np.mean([a for a, _, _, k in rows if k == kind]):.3f}" for kind in KINDS)
            lines.append(f"| {label} | {name} | {sum(z < 1 for _, _, z, _ in rows)} | "
                         f"{np.mean([d for _, d, _, _ in rows]):.4f} | {np.mean([a for a, _, _, _ in rows]):.4f} | {kinds} |")
    table = "\n".join([head, *lines])
    print(table)
    small = [s for s in tune if (median_diameter(s.labels) or 99) <= shipped][:20] if shipped else []
    mag = magnified(entry, small, (1.0, 1.5, 2.0, 3.0), shipped) if small else []
    mag_table = "\n".join(["| enlarged | images | DSB off | DSB auto | AP@0.5 off | AP@0.5 auto |", "|---|---|---|---|---|---|"]
                          + [f"| {f:g}x | {n} | {a:.3f} | {b:.3f} | {c:.3f} | {d:.3f} |" for f, n, a, b, c, d in mag])
    print(mag_table)
    diffs = {name: np.array([a for a, *_ in r[shipped]]) - np.array([a for a, *_ in r[None]])
             for name, r in res.items()} if shipped else {}
    paired = "\n".join(f"- {name}: {int((d > 1e-3).sum())} images better, {int((d < -1e-3).sum())} worse, "
                       f"mean change {d.mean():+.4f}" for name, d in diffs.items())
    DOCS.write_text(
        f"# Nucleus-size normalisation ({args.model})\n\n"
        "`segment()` measures the median nucleus diameter of a first pass and, when it is larger than "
        "the model's target / 0.9, segments the image again shrunk to the target, with the maps scaled "
        "back up so outlines and measurements stay at full resolution (`sizing.py`). The shipped target "
        f"({shipped} px) is the median diameter of the training nuclei, not a tuned value.\n\n"
        f"`python experiments/sizing_study.py --model {args.model}`\n\n{table}\n\n"
        f"Per image, shipped target vs off (AP@0.5):\n\n{paired}\n\n"
        "## Higher magnification, without the validation split\n\n"
        "The first 20 tuning images whose nuclei are at most the target size, enlarged (bilinear; labels "
        "nearest) as if imaged at a higher magnification, segmented with the size normalisation off and "
        f"on (`auto`, shipped target):\n\n{mag_table}\n\n"
        "Reading: on the training images (which the model has learnt at their own scale) shrinking is "
        "neutral at every target; on the unseen validation images every target from 16 to 35 px gains, "
        "mostly on high-magnification fluorescence (nuclei 35-50 px across merged or missed at their own "
        "scale). The enlarged training images point the same way on data the validation split never "
        "touched: scores fall with magnification, and the size normalisation wins back part of the "
        "fall at 2x and 3x (not all: it shrinks nuclei to the target, not to their 1x size, which for "
        "these images is smaller, and at 1.5x most of them stay under target / 0.9). Enlarging small nuclei did not help in an earlier sweep, so `sizing` only shrinks.\n"
    )


if __name__ == "__main__":
    main()
