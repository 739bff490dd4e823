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
    assert sorted(p.name for p in zoo.user_models_dir().iterdir() if not p.name.startswith(".")) == \
        ["src.json", "src.pt"]


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
    with pytest.raises(ValueError, match="'A2' segments images for 'B'"):  # a later 'A2' would take them
        zoo.delete_user_model("A2")
    for path in (zoo.get_entry("A2").weights, zoo.get_entry("A2").weights.with_suffix(".json")):
        path.unlink()  # removed by hand
    with pytest.warns(UserWarning, match="not installed"):
        assert zoo.get_entry("B").for_kind("stained").name == "B"
    zoo.delete_user_model("B")


def test_a_name_with_a_newline_is_refused():
    entry = _save("older")  # a model named "Default" by an older version: still listed and found
    card = json.loads(entry.weights.with_suffix(".json").read_text())
    entry.weights.with_suffix(".json").write_text(json.dumps({**card, "name": "Default"}))
    for suffix in (".json", ".pt"):
        entry.weights.with_suffix(suffix).rename(entry.weights.with_name("Default" + suffix))
    assert zoo.get_entry("Default").name == "Default"
    zoo.delete_user_model("Default")
    for bad in ("mymodel\n", "a/b", "", None, "default", "Default"):  # "default" always means the default
        with pytest.raises(ValueError, match="invalid model name"):
            zoo.check_name(bad)


@pytest.mark.parametrize("field, value", [
    ("suggest_for", 5), ("outputs", 5), ("description", ["x"]),
    # values that broke segment() with a traceback, or silently found nothing
    ("normalize", {"percentiles": [1, None]}), ("normalize", {"percentiles": "ab"}),
    ("config", {"base": 16, "depth": 5, "in_channels": "x"}), ("sizing", {"target_diameter": -5}),
    ("postprocess", {"threshold": 1e308, "border_threshold": 0.5, "min_size": 8, "min_mean_foreground": 0}),
    ("stain_signal", "blue"), ("imported_net", {"size_min": 30000}), ("card", "[" * 200_000)])
def test_a_card_field_of_the_wrong_kind_skips_that_model_only(capsys, field, value):
    entry = _save("odd")
    _save("fine")
    card = json.loads(entry.weights.with_suffix(".json").read_text())
    text = value if field == "card" else json.dumps({**card, field: value})  # "card": JSON nested too deep
    entry.weights.with_suffix(".json").write_text(text)
    with pytest.warns(UserWarning, match="odd.json: model skipped"):
        zoo.suggested_for("stained")  # it raised a TypeError, for every kind
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    assert "fine" in out


def test_two_processes_saving_one_name_at_once_give_one_model(tmp_path):
    import subprocess
    import sys

    script = (
        "import sys, torch\n"
        "from napari_nucleiseg import zoo\n"
        "from napari_nucleiseg.models import build\n"
        "torch.manual_seed(int(sys.argv[1]))\n"
        "try:\n"
        "    zoo.save_user_model('same', build('unet', base=8, depth=3), 'unet', {'base': 8, 'depth': 3},\n"
        "                        {'description': 'saved by ' + sys.argv[1]})\n"
        "    print('saved')\n"
        "except ValueError as exc:\n"
        "    print('refused', exc)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(k)], stdout=subprocess.PIPE, text=True)
             for k in (1, 2)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert sorted(o.split()[0] for o in outs) == ["refused", "saved"], outs
    entry = zoo.get_entry("same")
    winner = entry.card["description"].split()[-1]
    torch.manual_seed(int(winner))
    expected = build("unet", base=8, depth=3).state_dict()
    got = zoo.load_weights_file(entry.weights)[0].state_dict()
    key = next(k for k in expected if expected[k].is_floating_point())
    assert torch.allclose(expected[key].half().float(), got[key])  # the card's weights, not the other's


def test_weights_holding_python_objects_are_refused_without_advice_to_run_them(capsys):
    import fractions

    entry = _save("pickled")
    blob = torch.load(entry.weights, weights_only=True)
    blob["extra"] = fractions.Fraction(1, 3)  # a Python object weights_only refuses (harmless here)
    torch.save(blob, entry.weights)
    from napari_nucleiseg.errors import ModelLoadError

    with pytest.raises(ModelLoadError) as err:
        zoo.load_model("pickled", "cpu")
    message = str(err.value)
    assert "\n" not in message and str(entry.weights) in message and "Python objects" in message
    assert "weights_only" not in message  # torch's hint: load it with weights_only=False, i.e. run its code
