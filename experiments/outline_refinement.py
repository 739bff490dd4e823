"""Outlines of shrunk images from the full-size first pass too (``sizing.sharper_foreground``).

An image whose nuclei are shrunk to the model's size is segmented on the shrunk pass's maps, scaled
back up; the full-size first pass that measured the nuclei was thrown away before. Now the shrunk
pass's nuclei are redrawn inside the weighted mean of both foregrounds (``postprocess.redraw_outlines``),
for the image kinds of ``sizing.SHARPER_KINDS``.
This scores the first pass's weight (0: off, as before) on the 60 seeded tuning images (training
images; the choice was made there) and on DSB val, through ``segment()``. Results and the rule:
``docs/sizing.md``.

    python experiments/outline_refinement.py [--model resunet32] [--weights 0,0.25,0.5,0.75] [--val]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchmark import load_sets  # noqa: E402
from devtools import tuning_images  # noqa: E402

from napari_nucleiseg import segment  # noqa: E402
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize  # noqa: E402
from napari_nucleiseg.inference import sizing  # noqa: E402
from napari_nucleiseg.io.images import read_image, read_labels  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, split_dsb  # noqa: E402


def weighted_mean(weight: float):
    """``sizing.sharper_foreground`` with the first pass's foreground at ``weight`` (0.5: the shipped mean)."""
    def mean(first, foreground):
        return weight * first + (1 - weight) * foreground
    return mean


def score(images, model: str, weight: float) -> tuple[dict, int]:
    """Mean scores of ``segment()`` on ``(image, labels)`` pairs with the first pass at ``weight``,
    and how many of its images were shrunk within the refined zooms, of a kind that is refined."""
    shipped = sizing.sharper_foreground, sizing.REFINE_MIN_ZOOM
    sizing.sharper_foreground = weighted_mean(weight)
    sizing.REFINE_MIN_ZOOM = shipped[1] if weight > 0 else np.inf
    try:
        rows, refined = [], 0
        for image, truth in images:
            seg = segment(image, model=model)
            refined += shipped[1] <= seg.zoom < 1.0 and seg.settings["image_kind"] in sizing.SHARPER_KINDS
            rows.append(evaluate_image(truth, seg.labels))
    finally:
        sizing.sharper_foreground, sizing.REFINE_MIN_ZOOM = shipped
    return summarize(rows), refined


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resunet32")
    ap.add_argument("--weights", default="0,0.25,0.5,0.75")
    ap.add_argument("--val", action="store_true", help="also score DSB val (a check, not a choice)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    root = default_data_dir()
    names = {s.name for s in tuning_images(split_dsb(root=root)[0])}
    pairs = [(ip, lp) for n, ip, lp in find_pairs(root / "train") if n in names]
    sets = {"tuning (60)": [(read_image(ip), read_labels(lp)) for ip, lp in pairs]}
    if args.val:
        sets["DSB val (58)"] = [(im, gt) for im, gt, _ in load_sets(root, None)["DSB val"]]
    print("| set | first-pass weight | images refined | DSB | AP@0.5 | PQ |\n|---|---|---|---|---|---|")
    for name, images in sets.items():
        for weight in (float(w) for w in args.weights.split(",")):
            m, refined = score(images, args.model, weight)
            print(f"| {name} | {weight:g} | {refined} | {m['dsb_score']:.4f} | {m['ap50']:.4f} | {m['pq']:.4f} |",
                  flush=True)


if __name__ == "__main__":
    main()
