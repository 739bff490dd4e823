"""Split merged nuclei by their shape after the watershed: a probe (not shipped).

An object whose solidity is below S has the h-maxima of its distance transform found (h = D times
its largest distance, at least 1 px); with two or more, a watershed on the distance transform
splits it, unless a part would hold under 15 % of the object. Scored on the 60 seeded tuning images
(``devtools.tuning_images``, training images only) as ``segment()`` labels them, by image kind.
Results and the rule: ``docs/training_log.md``.

    python experiments/shape_split.py [--model resunet32]
"""

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.measure import regionprops
from skimage.morphology import h_maxima
from skimage.segmentation import relabel_sequential, watershed

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from devtools import tuning_images  # noqa: E402

from napari_nucleiseg import segment  # noqa: E402
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize  # noqa: E402
from napari_nucleiseg.io.images import read_image, read_labels  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, split_dsb  # noqa: E402

GRID = [None, *itertools.product((0.80, 0.85, 0.90), (0.15, 0.25, 0.35))]


def split_by_shape(labels: np.ndarray, min_solidity: float, depth: float, min_part: float = 0.15) -> np.ndarray:
    """``labels`` with each object of solidity below ``min_solidity`` cut at the saddles of its
    distance transform that are at least ``depth`` of its largest distance deep."""
    out = labels.copy()
    nxt = int(labels.max()) + 1
    for r in regionprops(labels):
        if r.area < 16 or r.solidity >= min_solidity:
            continue
        obj = np.pad(r.image, 1)
        edt = ndi.distance_transform_edt(obj)
        markers, n = ndi.label(h_maxima(edt, max(1.0, depth * edt.max())))
        if n < 2:
            continue
        parts = watershed(-edt, markers, mask=obj)[1:-1, 1:-1]
        if np.bincount(parts.ravel())[1:].min() < min_part * r.area:
            continue
        view = out[r.bbox[0]:r.bbox[2], r.bbox[1]:r.bbox[3]]
        for k in range(2, n + 1):
            view[parts == k] = nxt
            nxt += 1
    return relabel_sequential(out)[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resunet32")
    args = ap.parse_args()
    torch.set_num_threads(2)
    root = default_data_dir()
    names = {s.name for s in tuning_images(split_dsb(root=root)[0])}
    rows = []
    for name, image_path, label_path in find_pairs(root / "train"):
        if name in names:
            seg = segment(read_image(image_path), model=args.model)
            rows.append((read_labels(label_path), seg, seg.settings["image_kind"]))
    groups = {"non-stained": [r for r in rows if r[2] != "stained"], "stained": [r for r in rows if r[2] == "stained"]}
    print("| group | images | setting (S, D) | DSB | AP@0.5 | FP | FN |\n|---|---|---|---|---|---|---|")
    for name, group in groups.items():
        for setting in GRID:
            m = summarize([evaluate_image(gt, seg.labels if setting is None else split_by_shape(seg.labels, *setting))
                           for gt, seg, _ in group])
            print(f"| {name} | {len(group)} | {setting or 'off'} | {m['dsb_score']:.4f} | {m['ap50']:.4f} "
                  f"| {m['fp']} | {m['fn']} |", flush=True)


if __name__ == "__main__":
    main()
