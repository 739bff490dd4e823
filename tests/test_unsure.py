"""An image the model is unsure of is said so: in the measurements helpers, the CLI and the batch line."""

import types

import numpy as np
import pandas as pd

from napari_nucleiseg.batch.report import outcome_line
from napari_nucleiseg.cli import main
from napari_nucleiseg.inference import measure
from napari_nucleiseg.inference.measure import UNSURE_BELOW, is_unsure, mean_confidence, unsure_note


def test_unsure_is_a_low_mean_confidence_and_never_an_empty_image():
    assert is_unsure(UNSURE_BELOW - 0.01) and not is_unsure(UNSURE_BELOW)
    assert not is_unsure(None) and not is_unsure(float("nan"))
    assert abs(mean_confidence(pd.DataFrame({"confidence": [0.2, 0.4]})) - 0.3) < 1e-9
    assert mean_confidence(pd.DataFrame({"confidence": []})) is None
    note = unsure_note(0.42)
    assert "unsure" in note and "0.42" in note and unsure_note(0.9) == "" and unsure_note(None) == ""


def test_batch_line_counts_the_images_the_model_is_unsure_of():
    summary = pd.DataFrame({"status": ["ok", "ok", "ok", "error"], "mean_confidence": [0.3, 0.8, np.nan, np.nan]})
    result = types.SimpleNamespace(summary=summary, n_ok=3, n_skipped=0, n_failed=1, n_pending=0, status="complete",
                                   unsure_below=None)
    line = outcome_line(result)
    assert line.startswith("3 of 4 images segmented, 1 failed") and "unsure of 1 " in line
    summary["mean_confidence"] = [0.7, 0.8, np.nan, np.nan]
    assert "unsure" not in outcome_line(result)


def test_cli_says_when_the_model_is_unsure(tmp_path, sample_dir, capsys, monkeypatch):
    image = sample_dir / "sparse_nuclei.tif"
    assert main(["segment", str(image), "--out", str(tmp_path / "a")]) == 0
    assert "unsure" not in capsys.readouterr().out  # the sample's nuclei are clear
    monkeypatch.setattr(measure, "UNSURE_BELOW", 1.01)  # every image is then one it is unsure of
    assert main(["segment", str(image), "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "sparse_nuclei.tif" in out[0] and "The model is unsure of this image" in out[1]


def test_cli_out_of_core_says_when_the_model_is_unsure(tmp_path, sample_dir, capsys, monkeypatch):
    monkeypatch.setattr(measure, "UNSURE_BELOW", 1.01)
    image = sample_dir / "sparse_nuclei.tif"
    assert main(["segment", str(image), "--out", str(tmp_path), "--out-of-core", "--block", "256"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "out of core" in out[0] and "The model is unsure of this image" in out[1]


def test_batch_manifest_and_line_count_unsure_images(tmp_path, monkeypatch):
    import json

    import tifffile

    from napari_nucleiseg.batch import BatchOptions, run_batch
    from napari_nucleiseg.synthetic import synthetic_nuclei

    folder = tmp_path / "in"
    folder.mkdir()
    for seed in (1, 2):
        tifffile.imwrite(folder / f"field{seed}.tif", synthetic_nuclei((128, 128), n_nuclei=6, seed=seed)[0])
    monkeypatch.setattr(measure, "UNSURE_BELOW", 1.01)  # every image is then one it is unsure of
    res = run_batch(folder, tmp_path / "out", BatchOptions(model="unet16"))
    assert json.loads(res.manifest_path.read_text())["unsure"] == 2 == res.n_ok
    assert "the model is unsure of 2 " in outcome_line(res)


def test_a_model_card_sets_its_own_cut(tmp_path, monkeypatch):
    from napari_nucleiseg import zoo
    from napari_nucleiseg.zoo.catalog import card_problem

    assert zoo.get_entry("maskrcnn-lite").unsure_below() == 0.85  # detection scores run higher
    assert zoo.get_entry("resunet32").unsure_below() == UNSURE_BELOW
    assert zoo.unsure_below_of("no such model") == UNSURE_BELOW
    assert card_problem({"confidence": {"unsure_below": 1.5}}) and card_problem({"confidence": 0.8})
    assert card_problem({"confidence": {"unsure_below": 0.7}}) is None
    note = unsure_note(0.8, zoo.get_entry("maskrcnn-lite").unsure_below())
    assert "below 0.85" in note and unsure_note(0.8) == ""


def test_the_batch_line_and_manifest_use_the_models_cut(tmp_path):
    import json

    import tifffile

    from napari_nucleiseg import zoo
    from napari_nucleiseg.batch import BatchOptions, run_batch
    from napari_nucleiseg.synthetic import synthetic_nuclei

    entry = zoo.get_entry("unet16")
    net, _ = zoo.load_weights_file(entry.weights)
    zoo.save_user_model("doubtful", net, entry.card["architecture"], entry.card["config"],
                        {"description": "unet16, unsure of everything", "confidence": {"unsure_below": 1.0}})
    folder = tmp_path / "in"
    folder.mkdir()
    tifffile.imwrite(folder / "field.tif", synthetic_nuclei((128, 128), n_nuclei=6, seed=1)[0])
    res = run_batch(folder, tmp_path / "out", BatchOptions(model="doubtful"))
    assert res.unsure_below == 1.0 and res.n_ok == 1
    assert json.loads(res.manifest_path.read_text())["unsure"] == 1
    assert "unsure of 1 (mean nucleus confidence below 1:" in outcome_line(res)
