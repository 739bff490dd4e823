"""Every shipped zoo model loads, segments an odd-sized image, and beats the classical baseline
on validation images it was never trained on."""

import numpy as np
import pytest

from napari_nucleiseg import segment
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize
from napari_nucleiseg.inference.kinds import image_kind
from napari_nucleiseg.inference.postprocess import classical_instances
from napari_nucleiseg.inference.preprocess import prepare_channels
from napari_nucleiseg.io.images import read_image, read_labels
from napari_nucleiseg.synthetic import synthetic_nuclei
from napari_nucleiseg.training.dataset import find_pairs, read_ids
from napari_nucleiseg.zoo import list_models

SHIPPED = [e for e in list_models() if not e.user]
N_IMAGES = 8


def _kind(entry) -> str | None:
    spec = entry.card.get("specialist")
    return spec.get("kind") if isinstance(spec, dict) else None


@pytest.fixture(scope="module")
def val_images(dsb_dir):
    """The validation images (image, labels, kind), in id order."""
    ids = sorted(read_ids(dsb_dir / "val.txt"))
    pairs = {n: (ip, lp) for n, ip, lp in find_pairs(dsb_dir / "train")}
    out = []
    for n in ids:
        image = read_image(pairs[n][0])
        out.append((image, read_labels(pairs[n][1]), image_kind(image)))
    return out


def test_every_architecture_of_the_registry_ships_weights():
    from napari_nucleiseg.models.registry import ARCHITECTURES

    shipped = {e.card["architecture"] for e in SHIPPED}
    assert set(ARCHITECTURES) <= shipped, f"no weights for {sorted(set(ARCHITECTURES) - shipped)}"


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_model_segments_an_odd_sized_image(entry):
    image, truth = synthetic_nuclei((157, 203), n_nuclei=12, seed=3)
    seg = segment(image, model=entry.name, diameter=None)
    assert seg.labels.shape == image.shape
    assert seg.labels.max() >= 6, f"{entry.name} found {seg.labels.max()} of 12 synthetic nuclei"
    assert len(seg.table) == len(np.unique(seg.labels[seg.labels > 0]))


@pytest.mark.parametrize("entry", SHIPPED, ids=lambda e: e.name)
def test_model_beats_the_classical_baseline_on_validation_images(entry, val_images):
    kind = _kind(entry)  # a specialist is scored on its own kind of image only
    data = [d for d in val_images if kind is None or d[2] == kind][:N_IMAGES]
    ours = summarize([evaluate_image(gt, segment(im, model=entry.name).labels) for im, gt, _ in data])
    base = summarize([evaluate_image(gt, classical_instances(prepare_channels(im, channels=2)[1]))
                      for im, gt, _ in data])
    assert ours["dsb_score"] > base["dsb_score"] + 0.05, (entry.name, ours["dsb_score"], base["dsb_score"])
    assert ours["ap50"] >= 0.5, (entry.name, ours["ap50"])
