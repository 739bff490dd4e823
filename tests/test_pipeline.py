import numpy as np
import pytest
import tifffile

from napari_nucleiseg import segment
from napari_nucleiseg.training.dataset import load_samples, read_ids
from napari_nucleiseg.errors import InvalidImageError
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize
from napari_nucleiseg.inference.stack import is_stack
from napari_nucleiseg.zoo import default_model_name, list_models


def test_segment_returns_consistent_outputs(sample_dir):
    image = tifffile.imread(sample_dir / "sparse_nuclei.tif")
    seg = segment(image, scale=(0.5, 0.5))
    assert seg.labels.shape == image.shape and seg.labels.dtype == np.int32
    assert seg.probability.dtype == np.float32 and seg.uncertainty.dtype == np.float32
    assert 0 <= seg.probability.min() and seg.probability.max() <= 1
    assert len(seg.table) == len(np.unique(seg.labels)) - 1 > 0
    for col in ("label", "area", "centroid_y", "centroid_x", "mean_intensity", "confidence", "area_physical"):
        assert col in seg.table.columns
    assert seg.table["confidence"].between(0, 1).all()
    np.testing.assert_allclose(seg.table["area_physical"], seg.table["area"] * 0.25)
    assert seg.model == default_model_name()


def test_segment_is_reproducible(sample_dir):
    image = tifffile.imread(sample_dir / "touching_nuclei.tif")
    a, b = segment(image), segment(image)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_segment_rejects_bad_input():
    with pytest.raises(InvalidImageError, match="NaN"):
        segment(np.full((32, 32), np.nan, np.float32))
    two_channels = np.zeros((64, 64, 2), np.float32)
    assert not is_stack(two_channels)
    with pytest.raises(InvalidImageError, match=r"two channels .*image\[\.\.\., 0\]"):
        segment(two_channels)


def test_every_shipped_model_has_a_complete_card():
    shipped = [e for e in list_models() if not e.user]
    assert len(shipped) >= 2
    assert sum(bool(e.card.get("default")) for e in shipped) == 1
    for e in shipped:
        for key in ("architecture", "config", "parameters", "training", "validation", "speed", "postprocess"):
            assert key in e.card, (e.name, key)
        assert "command" in e.card["training"] and e.card["training"]["command"]


def test_default_model_accuracy_on_validation_images(dsb_dir):
    ids = read_ids(dsb_dir / "val.txt")[:8]
    samples = load_samples(dsb_dir / "train", include=set(ids))
    from napari_nucleiseg.io.images import read_image

    rows = []
    for s in samples:
        raw = read_image(dsb_dir / "train" / "images" / f"{s.name}.png")
        rows.append(evaluate_image(s.labels, segment(raw).labels))
    score = summarize(rows)["dsb_score"]
    assert score >= 0.55, score
