"""Post-processing settings that a model card tunes for one kind of image (``postprocess_by_kind``)."""

import json
import warnings

import numpy as np
import pytest
import torch

from napari_nucleiseg import zoo
from napari_nucleiseg.inference.pipeline import segment
from napari_nucleiseg.io.images import read_image
from napari_nucleiseg.models import build
from napari_nucleiseg.synthetic import synthetic_nuclei
from napari_nucleiseg.training.finetune import fine_tune

NO_SEEDS = {"fluorescence": {"seed_min_size": 10**6}}  # every seed dropped: touching nuclei stay one


def _unet16_copy(name: str, by_kind: dict | None):
    shipped = zoo.get_entry("unet16")
    model, blob = zoo.load_weights_file(shipped.weights)
    card = {k: v for k, v in shipped.card.items() if k not in ("name", "default")}
    if by_kind is not None:
        card["postprocess_by_kind"] = by_kind
    return zoo.save_user_model(name, model, blob["architecture"], blob["config"], card)


def test_a_kind_gets_its_own_settings_over_the_model_ones():
    entry = _unet16_copy("no-seeds", NO_SEEDS)
    assert entry.postprocess("fluorescence")["seed_min_size"] == 10**6
    assert entry.postprocess("fluorescence")["threshold"] == entry.postprocess()["threshold"]
    assert "seed_min_size" not in entry.postprocess() and "seed_min_size" not in entry.postprocess("stained")


def test_segment_applies_the_settings_of_the_image_kind(sample_dir):
    image = read_image(sample_dir / "touching_nuclei.tif")
    plain = segment(image, model=_unet16_copy("plain", None).name, device="cpu")
    seedless = segment(image, model=_unet16_copy("no-seeds", NO_SEEDS).name, device="cpu")
    assert seedless.settings["image_kind"] == "fluorescence" and seedless.settings["seed_min_size"] == 10**6
    assert "seed_min_size" not in plain.settings
    # without seeds the watershed cannot split touching nuclei: fewer, larger objects
    assert 0 < seedless.labels.max() < plain.labels.max()
    bright = segment(255 - image.astype(np.float32) / image.max() * 255, model="no-seeds", device="cpu")
    assert bright.settings["image_kind"] == "brightfield" and "seed_min_size" not in bright.settings


def test_a_card_whose_kind_settings_are_not_numbers_is_skipped_with_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEISEG_USER_DIR", str(tmp_path))
    folder = tmp_path / "models"
    folder.mkdir()
    for name, by_kind in (("flat", {"stained": 5}), ("text", {"stained": {"seed_min_size": "big"}})):
        (folder / f"{name}.pt").write_bytes(b"")
        (folder / f"{name}.json").write_text(json.dumps({"postprocess_by_kind": by_kind}))
    with pytest.warns(UserWarning) as caught:
        names = {e.name for e in zoo.list_models()}
    assert not {"flat", "text"} & names
    assert "flat.json" in " ".join(str(w.message) for w in caught)


def test_a_fine_tuned_model_keeps_the_kind_settings_of_its_base():
    torch.manual_seed(0)
    model = build("unet", base=8, depth=3)
    zoo.save_user_model("tiny-kinds", model, "unet", {"base": 8, "depth": 3},
                        {"postprocess": {"min_size": 4}, "postprocess_by_kind": {"stained": {"seed_min_size": 20}}})
    field = synthetic_nuclei((128, 128), n_nuclei=12, radius=(6, 10), seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fine_tune("tiny-kinds", [field], steps=2, batch_size=2, crop=64, device="cpu", replay=0.0,
                        name="tiny-kinds-ft")
    card = res.entry.card
    assert card["postprocess_by_kind"] == {"stained": {"seed_min_size": 20}}
    assert "seed_min_size" not in card["postprocess"]


def test_out_of_core_applies_and_records_the_settings_of_the_image_kind(sample_dir, tmp_path):
    from napari_nucleiseg.outofcore import segment_out_of_core

    entry = _unet16_copy("no-seeds", NO_SEEDS)
    result = segment_out_of_core(sample_dir / "touching_nuclei.tif", tmp_path / "out", model=entry.name, block=256)
    plain = segment_out_of_core(sample_dir / "touching_nuclei.tif", tmp_path / "plain",
                                model=_unet16_copy("plain", None).name, block=256)
    assert result.settings["seed_min_size"] == 10**6 and "seed_min_size" not in plain.settings
    assert result.settings["threshold"] == entry.postprocess()["threshold"]
    assert 0 < result.nuclei < plain.nuclei


def test_the_model_own_values_given_as_options_keep_the_kind_settings():
    from napari_nucleiseg.options import SegmentOptions

    shared = {"threshold": 0.5, "border_threshold": 0.5, "min_size": 16, "min_mean_foreground": 0.85}
    kind = {**shared, "border_threshold": 0.3, "min_size": 24}
    spelt_out = SegmentOptions(**shared)  # what the widgets and batch runs pass
    assert spelt_out.postprocess(kind, shared) == kind
    assert SegmentOptions(min_size=10).postprocess(kind, shared)["min_size"] == 10  # the user's own value wins
    assert SegmentOptions(min_size=16).postprocess(kind)["min_size"] == 16  # no shared settings: as given


def test_segment_with_the_model_values_spelt_out_equals_segment_without(sample_dir):
    by_kind = {"fluorescence": {"min_size": 400, "border_threshold": 0.2}}
    entry = _unet16_copy("big-min", by_kind)
    image = read_image(sample_dir / "touching_nuclei.tif")
    own = entry.postprocess()
    plain = segment(image, model=entry.name, device="cpu")
    spelt = segment(image, model=entry.name, device="cpu", **{k: own[k] for k in ("threshold", "border_threshold",
                                                                                   "min_size", "min_mean_foreground")})
    assert plain.settings["min_size"] == spelt.settings["min_size"] == 400
    np.testing.assert_array_equal(plain.labels, spelt.labels)
    smaller = segment(image, model=entry.name, device="cpu", min_size=own["min_size"] + 1)
    assert smaller.settings["min_size"] == own["min_size"] + 1 and smaller.labels.max() > plain.labels.max()
