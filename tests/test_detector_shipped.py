"""The shipped detector ``maskrcnn-lite``: listed by the zoo, a complete card, and it segments
through the command line like any zoo model."""

import json

import numpy as np
import pytest
import tifffile

from napari_nucleiseg import segment
from napari_nucleiseg.cli import main
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize
from napari_nucleiseg.io.images import read_labels
from napari_nucleiseg.zoo import get_entry

NAME = "maskrcnn-lite"
#: DSB-score floors: the sample image (measured 0.664) and the first 8 ids of val.txt (measured 0.697)
FLOOR_SAMPLE, FLOOR_VAL8 = 0.6, 0.64


def test_zoo_lists_the_detector_with_its_card_figures(capsys):
    assert main(["zoo"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith(NAME))
    entry = get_entry(NAME)
    assert "maskrcnn_lite" in row and f"{entry.card['validation']['dsb_score']:.3f}" in row
    assert "(default)" not in row


def test_the_card_says_what_the_detector_outputs():
    entry = get_entry(NAME)
    card = entry.card
    assert entry.outputs_instances and not card["default"] and card["architecture"] == "maskrcnn_lite"
    for key in ("config", "parameters", "training", "postprocess", "validation", "speed", "sizing", "licence"):
        assert key in card, key
    assert "dsb2018_test.txt" in card["training"]["split"] and "train_model.py" in card["training"]["command"]
    assert entry.weights.stat().st_size < 10e6


def test_cli_segment_and_evaluate_with_the_detector(tmp_path, sample_dir, capsys):
    image = sample_dir / "touching_nuclei.tif"
    assert main(["segment", str(image), "--model", NAME, "--out", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "out"), str(sample_dir / "ground_truth"), "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    seg = segment(tifffile.imread(image), model=NAME)
    truth = read_labels(sample_dir / "ground_truth" / "touching_nuclei.tif")
    assert s == pytest.approx({**summarize([evaluate_image(truth, seg.labels)]), "n_files": 1})
    assert s["n_true"] == 45 and s["dsb_score"] > FLOOR_SAMPLE, s
    conf = seg.table["confidence"].to_numpy()
    assert (conf >= seg.settings["threshold"]).all() and (np.diff(conf) <= 1e-6).all()


def test_detector_on_eight_validation_images(dsb_dir, tmp_path, capsys):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join((dsb_dir / "val.txt").read_text().split()[:8]))
    assert main(["evaluate", "--data", str(dsb_dir / "train"), "--ids", str(ids), "--model", NAME, "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["n_images"] == 8 and s["dsb_score"] >= FLOOR_VAL8, s
