"""Are predicted outlines systematically too tight or too wide? Scores with every nucleus grown or
shrunk by a few pixels, and the area ratio of matched nuclei, on images no choice is made on
elsewhere: DSB *training* images of one kind (not val.txt, not the test split) and, where present,
the validation tiles of the non-commercial sets (``splits/*_val.txt``).

    python experiments/outline_bias.py resunet32 [MODEL ...] [--kind stained] [--limit 30]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from skimage.segmentation import expand_labels, find_boundaries

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from benchmark import load_sets  # noqa: E402

from napari_nucleiseg import segment
from napari_nucleiseg.evaluation.metrics import evaluate_image, iou_matrix, summarize
from napari_nucleiseg.inference.kinds import image_kind
from napari_nucleiseg.io.images import read_image, read_labels
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, read_ids

SPLITS = Path(__file__).resolve().parents[1] / "splits"
GROW = (-1, 0, 1, 2)


def grown(labels: np.ndarray, px: int) -> np.ndarray:
    """Every nucleus grown by ``px`` pixels (``expand_labels``), or with its outer ``-px`` pixels removed."""
    if px >= 0:
        return expand_labels(labels, px) if px else labels
    for _ in range(-px):
        labels = np.where(find_boundaries(labels, mode="inner"), 0, labels)
    return labels


def area_ratios(gt: np.ndarray, pred: np.ndarray) -> list[float]:
    """Predicted / true area of the nuclei matched at IoU >= 0.5."""
    iou = iou_matrix(gt, pred)
    g, p = np.nonzero(iou >= 0.5)
    ga, pa = np.bincount(gt.ravel()), np.bincount(pred.ravel())
    return [pa[j + 1] / ga[i + 1] for i, j in zip(g, p)]


def image_sets(kind: str, limit: int) -> dict[str, list]:
    root = default_data_dir()
    held = set(read_ids(root / "val.txt")) | set(read_ids(SPLITS / "dsb2018_test.txt"))
    dsb = [(read_image(ip), read_labels(lp)) for n, ip, lp in find_pairs(root / "train") if n not in held]
    sets = {f"DSB train, {kind}": [d for d in dsb if image_kind(d[0]) == kind][:limit]}
    nc_val = {k: v for k, v in load_sets(root, None, nc_val=True).items() if k.endswith("val") and k != "DSB val"}
    return {**sets, **{k: [(im, lab) for im, lab, _ in v] for k, v in nc_val.items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--kind", default="stained")
    ap.add_argument("--limit", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    sets = image_sets(args.kind, args.limit)
    print("| model | images | median area pred/true | " + " | ".join(f"DSB score, grown {g:+d} px" for g in GROW)
          + " |\n|---|---|---|" + "---|" * len(GROW))
    for name in args.models:
        for set_name, data in sets.items():
            ratios, rows = [], {g: [] for g in GROW}
            for image, gt in data:
                pred = segment(image, model=name).labels
                ratios += area_ratios(gt, pred)
                for g in GROW:
                    rows[g].append(evaluate_image(gt, grown(pred, g)))
            scores = " | ".join(f"{summarize(rows[g])['dsb_score']:.3f}" for g in GROW)
            print(f"| {name} | {set_name} ({len(data)}) | {np.median(ratios):.3f} | {scores} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
