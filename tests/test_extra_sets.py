"""The --extra data sets of scripts/train_model.py: seeded splits, and --refit."""

import sys
from pathlib import Path

import tifffile

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train_model  # noqa: E402

from napari_nucleiseg.synthetic import synthetic_nuclei  # noqa: E402


def _extra_set(tmp_path):
    root = tmp_path / "set"
    for sub in ("images", "labels"):
        (root / sub).mkdir(parents=True)
    for i in range(4):
        img, lab = synthetic_nuclei((64, 64), n_nuclei=5, radius=(4, 6), seed=i)
        tifffile.imwrite(root / "images" / f"t{i}.tif", img)
        tifffile.imwrite(root / "labels" / f"t{i}.tif", lab)
    splits = tmp_path / "splits"
    splits.mkdir()
    (splits / "toy_test.txt").write_text("t0\n")
    (splits / "toy_val.txt").write_text("t1\n")
    return root, splits


def names(samples):
    return sorted(s.name for s in samples)


def test_extra_set_keeps_test_and_validation_tiles_out_of_training(tmp_path, monkeypatch):
    root, splits = _extra_set(tmp_path)
    monkeypatch.setattr(train_model, "SPLITS", splits)
    train, val = train_model.extra_samples(f"{root}:toy:3", channels=1, target=19.5)
    assert names(train) == ["t2", "t2", "t2", "t3", "t3", "t3"]
    assert names(val) == ["t1"]


def test_refit_trains_on_the_validation_tiles_but_never_the_test_tiles(tmp_path, monkeypatch):
    root, splits = _extra_set(tmp_path)
    monkeypatch.setattr(train_model, "SPLITS", splits)
    train, val = train_model.extra_samples(f"{root}:toy", channels=1, target=19.5, refit=True)
    assert names(train) == ["t1", "t2", "t3"]
    assert val == []
