"""A model's card can hand one image kind (e.g. stained tissue) to a specialist model."""

import json

import numpy as np
import pytest
import torch

from napari_nucleiseg import segment, zoo
from napari_nucleiseg.batch import weights_sha256
from napari_nucleiseg.models import build
from napari_nucleiseg.synthetic import synthetic_nuclei

POST = {"threshold": 0.5, "border_threshold": 0.5, "min_size": 8, "min_mean_foreground": 0.0}


def _save(name, seed, card):
    torch.manual_seed(seed)
    model = build("unet", base=4, depth=2)
    return zoo.save_user_model(name, model, "unet", {"base": 4, "depth": 2}, {"postprocess": POST, **card})


@pytest.fixture
def parent():
    _save("tiny-stained", 1, {"specialist": {"kind": "stained", "parent": "tiny"}})
    return _save("tiny", 0, {"specialists": {"stained": "tiny-stained"}})


def _stained(seed=0):
    """Purple nuclei on a pink background, as in H&E."""
    grey, _ = synthetic_nuclei((96, 96), n_nuclei=8, seed=seed)
    g = grey.astype(np.float32) / max(float(grey.max()), 1.0)
    rgb = np.stack([235 - 120 * g, 200 - 150 * g, 225 - 60 * g], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def test_for_kind_picks_the_named_specialist(parent):
    assert parent.for_kind("stained").name == "tiny-stained"
    assert parent.for_kind("fluorescence").name == "tiny"
    assert parent.for_kind(None).name == "tiny"
    assert [p.name for p in parent.weight_files()] == ["tiny.pt", "tiny-stained.pt"]


def test_missing_specialist_falls_back_to_the_model_itself(parent):
    with pytest.raises(ValueError, match="'tiny-stained' segments images for 'tiny'"):
        zoo.delete_user_model("tiny-stained")  # refused: a model saved later under its name would take them
    gone = zoo.get_entry("tiny-stained").weights
    gone.unlink()  # removed by hand
    gone.with_suffix(".json").unlink()
    entry = zoo.get_entry("tiny")
    with pytest.warns(UserWarning, match="'tiny-stained', which is not installed"):
        assert entry.for_kind("stained").name == "tiny"
        assert [p.name for p in entry.weight_files()] == ["tiny.pt"]


def test_segment_routes_stained_images_to_the_specialist(parent):
    stained = segment(_stained(), model="tiny", device="cpu")
    assert stained.model == "tiny-stained"
    assert stained.settings["model"] == "tiny" and stained.settings["image_kind"] == "stained"
    direct = segment(_stained(), model="tiny-stained", device="cpu")
    np.testing.assert_array_equal(stained.probability, direct.probability)

    grey, _ = synthetic_nuclei((96, 96), n_nuclei=8, seed=0)
    fluo = segment(grey, model="tiny", device="cpu")
    assert fluo.model == "tiny" and fluo.settings["image_kind"] == "fluorescence"
    # told the nuclei are dark, a colour image is stained even without the detection
    assert segment(_stained(), model="tiny", invert=True, device="cpu").model == "tiny-stained"


def test_batch_fingerprint_changes_with_the_specialist_weights(parent):
    before = weights_sha256("tiny")
    _save("other", 2, {})
    zoo.get_entry("other").weights.replace(zoo.get_entry("tiny-stained").weights)
    assert weights_sha256("tiny") != before


def test_fine_tuning_on_stained_images_starts_from_the_specialist(parent):
    from napari_nucleiseg.training.finetune import fine_tune

    _, labels = synthetic_nuclei((96, 96), n_nuclei=8, seed=0)
    res = fine_tune("tiny", [(_stained(), labels)], steps=2, batch_size=2, crop=64, device="cpu",
                    replay=0.0, name="tiny-he")
    card = res.entry.card
    assert card["parent"] == "tiny" and card["parent_weights"] == "tiny-stained.pt"
    assert card["finetune"]["images"][0]["kind"] == "stained"
    # the other kinds stay with the model that segmented them before
    assert card["specialists"] == {"fluorescence": "tiny", "brightfield": "tiny"}
    grey, _ = synthetic_nuclei((96, 96), n_nuclei=8, seed=0)
    assert segment(grey, model="tiny-he", device="cpu").model == "tiny"
    assert segment(_stained(), model="tiny-he", device="cpu").model == "tiny-he"


def test_fine_tuning_on_fluorescence_keeps_the_parents_specialists(parent):
    from napari_nucleiseg.training.finetune import fine_tune

    grey, labels = synthetic_nuclei((96, 96), n_nuclei=8, seed=0)
    res = fine_tune("tiny", [(grey, labels)], steps=2, batch_size=2, crop=64, device="cpu",
                    replay=0.0, name="tiny-fl")
    assert res.entry.card["parent_weights"] == "tiny.pt"
    assert res.entry.card["specialists"] == {"brightfield": "tiny", "stained": "tiny-stained"}
    assert segment(_stained(), model="tiny-fl", device="cpu").model == "tiny-stained"
    assert segment(grey, model="tiny-fl", device="cpu").model == "tiny-fl"


def test_an_opt_in_model_states_its_licence_and_is_suggested_for_its_kind(tmp_path, monkeypatch):
    from napari_nucleiseg._napari.segment_widget import suggestion

    monkeypatch.setenv("NUCLEISEG_USER_DIR", str(tmp_path))
    net = build("unet", base=4, depth=2)
    card = {"licence": "CC BY-NC-SA 4.0 (non-commercial: trained on MoNuSeg 2018)", "suggest_for": ["stained"]}
    zoo.save_user_model("tissue-nc", net, "unet", {"base": 4, "depth": 2}, card)
    entry = zoo.get_entry("tissue-nc")
    assert "non-commercial" in entry.description
    shipped = [e.name for e in zoo.list_models() if not e.user and "stained" in e.card.get("suggest_for", [])]
    assert [e.name for e in zoo.suggested_for("stained")] == shipped + ["tissue-nc"]
    assert zoo.suggested_for("fluorescence") == []
    hint = suggestion("stained", "default")
    assert "tissue-nc" in hint and "non-commercial" in hint
    assert " tissue-nc (" not in suggestion("stained", "tissue-nc") and suggestion("fluorescence", "default") == ""


def test_the_shipped_tissue_model_is_opt_in_and_says_it_is_non_commercial():
    entry = zoo.get_entry("resunet32-tissue-nc")
    assert not entry.card.get("default") and zoo.get_entry("default").name != entry.name
    assert "non-commercial" in entry.licence.lower() and "non-commercial" in entry.description
    assert "stained" in entry.card["suggest_for"]
    assert entry.input_channels() == 2 and "distance" in entry.card["outputs"]


def test_bad_files_in_the_user_models_folder_never_break_the_shipped_models(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEISEG_USER_DIR", str(tmp_path))
    folder = tmp_path / "models"
    folder.mkdir()
    shipped = zoo.get_entry("default").name
    for name, card in (("list", "[1, 2]"), ("badnum", '{"validation": {"dsb_score": [1]}}'),
                       ("shadow", json.dumps({"name": shipped})), ("broken", "{not json")):
        (folder / f"{name}.json").write_text(card)
        (folder / f"{name}.pt").write_bytes(b"")
    (folder / "truncated.json").write_text('{"name": "truncated"}')
    (folder / "truncated.pt").write_bytes(b"PK\x03\x04 not a whole file")
    with pytest.warns(UserWarning) as caught:
        names = [e.name for e in zoo.list_models()]
    assert names.count(shipped) == 1 and zoo.get_entry("default").user is False
    assert "truncated" in names and not {"list", "badnum", "shadow", "broken"} & set(names)
    messages = " ".join(str(w.message) for w in caught)
    for name in ("list", "badnum", "shadow", "broken"):
        assert f"{name}.json" in messages
    from napari_nucleiseg.errors import NucleisegError

    with pytest.raises(NucleisegError, match="truncated.pt: cannot load"), pytest.warns(UserWarning):
        zoo.load_model("truncated", "cpu")
    image, _ = synthetic_nuclei((64, 64), n_nuclei=3, seed=1)
    with pytest.warns(UserWarning):
        assert segment(image, device="cpu").labels.max() > 0


def test_a_changed_card_is_read_again(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEISEG_USER_DIR", str(tmp_path))
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "mine.pt").write_bytes(b"")
    card = folder / "mine.json"
    card.write_text(json.dumps({"description": "first"}))
    assert zoo.get_entry("mine").card["description"] == "first"
    replacement = folder / "mine.tmp"
    replacement.write_text(json.dumps({"description": "second"}))  # same size, a new file
    replacement.replace(card)
    assert zoo.get_entry("mine").card["description"] == "second"
    (folder / "other.pt").write_bytes(b"")
    (folder / "other.json").write_text("{}")
    assert {"mine", "other"} <= {e.name for e in zoo.list_models()}
    card.unlink()
    assert "mine" not in {e.name for e in zoo.list_models()}
