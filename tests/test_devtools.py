"""The release tools score a model as ``segment()`` runs it: stained images reach a stained
specialist prepared as it takes them (``scripts/devtools.py``)."""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from devtools import DSB_TEST, routed_maps, routed_splits, specialist_models, stained_signal, tuning_images  # noqa: E402

from napari_nucleiseg import segment, zoo  # noqa: E402
from napari_nucleiseg.device import resolve_device  # noqa: E402
from napari_nucleiseg.evaluation.metrics import evaluate_image  # noqa: E402


def test_stained_images_are_prepared_for_the_model_that_segments_them():
    default = zoo.get_entry("default")
    assert default.stain_signal() == "darkest"
    assert stained_signal(default.card, default.stain_signal()) == default.for_kind("stained").stain_signal() == "red"
    unet = zoo.get_entry("unet16")  # no specialists: its own
    assert stained_signal(unet.card, unet.stain_signal()) == unet.stain_signal()


def test_routed_validation_matches_segment_on_a_stained_image(dsb_dir, monkeypatch):
    """The card's validation of the default went through the stained specialist with the darkest
    channel (8 stained validation images: 0.434 where ``segment()`` gives 0.421)."""
    from napari_nucleiseg import device
    from napari_nucleiseg.io.images import read_image
    from napari_nucleiseg.training.dataset import find_pairs

    # float32 on every CPU: under bf16 the tools' unfolded batch norm and segment()'s folded one differ by ~0.01
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)

    entry = zoo.get_entry("default")
    _, val = routed_splits(entry.card, entry.stain_signal(), root=dsb_dir)
    stained = next(s for s in val if s.kind == "stained")
    by_kind = entry.card.get("postprocess_by_kind", {})
    maps = routed_maps(None, [stained], resolve_device("cpu"), specialist_models(entry.card), entry.postprocess(),
                       entry.target_diameter(), by_kind)[0]
    image_path = next(ip for n, ip, _ in find_pairs(dsb_dir / "train") if n == stained.name)
    seg = segment(read_image(image_path))
    np.testing.assert_allclose(maps["foreground"], seg.probability, atol=1e-4)
    assert evaluate_image(stained.labels, seg.labels)["dsb_score"] > 0


def test_the_tools_label_a_shrunk_fluorescence_image_as_segment_does(dsb_dir):
    """Its outlines come from the full-size first pass too (``sizing.sharper_foreground``), which the maps
    alone do not give: the card's validation must take ``sized_prediction``'s labels."""
    from devtools import sized_segmentation

    from napari_nucleiseg.inference.postprocess import instances
    from napari_nucleiseg.io.images import read_image
    from napari_nucleiseg.training.dataset import find_pairs

    entry = zoo.get_entry("default")
    _, val = routed_splits(entry.card, entry.stain_signal(), root=dsb_dir)
    name = "02903040e19ddf92f452907644ad3822918f54af41dd85e5a3fe3e1b6d6f9339"  # nuclei ~43 px: shrunk to ~0.45
    sample = next(s for s in val if s.name == name)
    model, _, device = zoo.load_model(entry.for_kind(sample.kind), "cpu")
    post = entry.postprocess(sample.kind)
    maps, labels = sized_segmentation(model, sample.image, device, post, entry.target_diameter(), kind=sample.kind)
    seg = segment(read_image(next(ip for n, ip, _ in find_pairs(dsb_dir / "train") if n == name)))
    assert 0.3 < seg.zoom < 0.9 and sample.kind == "fluorescence"
    np.testing.assert_array_equal(labels, seg.labels)
    assert not np.array_equal(instances(maps, post), seg.labels)


def test_post_processing_is_never_tuned_on_the_held_out_test_split():
    from types import SimpleNamespace

    from napari_nucleiseg.training.dataset import read_ids

    test = read_ids(DSB_TEST)
    train = [SimpleNamespace(name=n) for n in test + [f"train{i}" for i in range(100)]]
    picked = {s.name for s in tuning_images(train)}
    assert len(picked) == 60 and not picked & set(test)


def test_a_warm_restart_card_counts_the_steps_behind_its_weights(tmp_path):
    from ship_model import staged_training

    recipe = {"name": "m", "training": {"command": "python scripts/train_model.py A", "epochs": 12,
                                        "epochs_run": 24, "seconds": 100.0, "device": "CPU",
                                        "steps": 300, "steps_run": 600}}
    run = {"command": "python scripts/train_model.py B", "epochs": 60, "epochs_run": 60, "seconds": 50.0,
           "device": "CPU", "steps": 1500, "steps_run": 1500}
    training = staged_training(recipe, dict(run), tmp_path, {}, 5e-4)
    assert (training["steps"], training["steps_run"], training["epochs"]) == (1800, 2100, 72)
    uncounted = {"name": "m", "training": {k: v for k, v in recipe["training"].items() if "steps" not in k}}
    assert "steps" not in staged_training(uncounted, dict(run), tmp_path, {}, 5e-4)
