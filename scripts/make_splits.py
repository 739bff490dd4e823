"""Seeded held-out test splits of the shared data sets, written to ``splits/``.

No training, checkpoint, snapshot window, input or post-processing choice may look at a
test split; they are scored once, for the model cards and README. Each split is stratified
by image kind (``preprocess.image_kind``) so that the rare kinds are represented.

Example::

    python scripts/make_splits.py --seed 2026
"""

import argparse
from pathlib import Path

import numpy as np

from napari_nucleiseg.inference.preprocess import image_kind
from napari_nucleiseg.io.images import read_image
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, read_ids

OUT = Path(__file__).resolve().parents[1] / "splits"


def stratified(ids_by_kind: dict[str, list[str]], fraction: float, rng) -> list[str]:
    """At least one id of every kind with two or more images, about ``fraction`` of each kind."""
    picked = []
    for kind in sorted(ids_by_kind):
        ids = sorted(ids_by_kind[kind])
        n = max(1, round(fraction * len(ids))) if len(ids) >= 2 else 0
        picked += list(rng.choice(ids, n, replace=False))
    return sorted(picked)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--fraction", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=2026)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    root = Path(args.data)
    val = set(read_ids(root / "val.txt"))
    by_kind: dict[str, list[str]] = {}
    for name, ip, _ in find_pairs(root / "train"):
        if name not in val:
            by_kind.setdefault(image_kind(read_image(ip)), []).append(name)
    test = stratified(by_kind, args.fraction, rng)
    OUT.mkdir(exist_ok=True)
    (OUT / "dsb2018_test.txt").write_text("\n".join(test) + "\n")
    print({k: len(v) for k, v in by_kind.items()}, "->", len(test), "test ids")


if __name__ == "__main__":
    main()
