"""Seeded held-out test splits of the shared data sets, written to ``splits/``.

Also the splits of the non-commercial sets under ``nc/`` (MoNuSeg 2018, DeepLIIF). No
training, checkpoint, snapshot window, input or post-processing choice may look at a
test split; they are scored once, for the model cards and README. Each split is stratified
by image kind (``kinds.image_kind``) so that the rare kinds are represented.

Example::

    python scripts/make_splits.py --seed 2026
"""

import argparse
import json
from pathlib import Path

import numpy as np

from napari_nucleiseg.inference.kinds import image_kind
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
    _write("dsb2018_test", test)
    print("dsb2018:", {k: len(v) for k, v in by_kind.items()}, "->", len(test), "test ids")
    nc = root.parent / "nc"
    if nc.is_dir():
        nc_splits(nc, np.random.default_rng(args.seed + 1))


def _write(name: str, ids: list[str]) -> None:
    (OUT / f"{name}.txt").write_text("\n".join(sorted(ids)) + "\n")


def nc_splits(nc: Path, rng) -> None:
    """MoNuSeg: the 14 challenge-test tiles are the test split (the split the field reports on),
    3 of the 13 challenge-train tiles validate. DeepLIIF: 2 of 6 tiles test, 1 validates."""
    log = json.loads((nc / "monuseg2018" / "convert_log.json").read_text())
    test = [r["id"] for r in log if r["split"] == "test"]
    train = sorted(r["id"] for r in log if r["split"] != "test")
    _write("monuseg2018_test", test)
    _write("monuseg2018_val", list(rng.choice(train, 3, replace=False)))
    ids = sorted(name for name, _, _ in find_pairs(nc / "deepliif_sample"))
    picked = list(rng.choice(ids, 3, replace=False))
    _write("deepliif_test", picked[:2])
    _write("deepliif_val", picked[2:])
    print(f"monuseg2018: {len(test)} test, 3 val of {len(train)}; deepliif: 2 test, 1 val of {len(ids)}")


if __name__ == "__main__":
    main()
