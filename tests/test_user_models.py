"""User models: cards checked before they join the zoo, names unique ignoring case, routes kept on rename."""

import json

import pytest
import torch

from napari_nucleiseg import zoo
from napari_nucleiseg.cli import main
from napari_nucleiseg.models import build


def _save(name, **card):
    torch.manual_seed(0)
    return zoo.save_user_model(name, build("unet", base=8, depth=3), "unet", {"base": 8, "depth": 3},
                               {"description": "tiny", **card})


def test_import_refuses_a_bad_card_and_leaves_nothing(tmp_path):
    path = zoo.export_model(_save("src").name, tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    blob["card"]["postprocess"] = "high"
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="card cannot be used"):
        zoo.import_model(tmp_path / "bad.pt", name="imported")
    assert sorted(p.name for p in zoo.user_models_dir().iterdir()) == ["src.json", "src.pt"]


@pytest.mark.parametrize("field, value", [("validation", {"dsb_score": "0.9"}), ("sizing", {"target_diameter": "20px"}),
                                          ("postprocess", {"threshold": True})])
def test_text_where_a_number_belongs_skips_the_card(field, value):
    entry = _save("m")
    card = json.loads(entry.weights.with_suffix(".json").read_text())
    entry.weights.with_suffix(".json").write_text(json.dumps({**card, field: value}))
    with pytest.warns(UserWarning):
        assert "m" not in [e.name for e in zoo.list_models()]


@pytest.mark.parametrize("field, value", [("parameters", "n/a"), ("licence", 1), ("training", "2 h"),
                                          ("speed", [1]), ("test", {"DSB test": 0.5})])
def test_one_odd_field_does_not_break_the_listing(capsys, field, value):
    entry = _save("odd")
    card = json.loads(entry.weights.with_suffix(".json").read_text())
    entry.weights.with_suffix(".json").write_text(json.dumps({**card, field: value}))
    assert main(["zoo"]) == 0
    assert "odd" in capsys.readouterr().out


def test_names_are_unique_ignoring_case():
    _save("Tiny")
    with pytest.raises(ValueError, match="'Tiny' exists already"):
        zoo.check_name("tiny")


def test_rename_keeps_the_routes_of_models_that_name_it():
    _save("A")
    _save("B", specialists={"stained": "A"}, parent="A")
    zoo.rename_user_model("A", "A2")
    b = zoo.get_entry("B")
    assert b.card["specialists"] == {"stained": "A2"} and b.card["parent"] == "A2"
    assert b.for_kind("stained").name == "A2"
    zoo.delete_user_model("A2")
    with pytest.warns(UserWarning, match="not installed"):
        assert zoo.get_entry("B").for_kind("stained").name == "B"
