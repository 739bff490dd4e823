"""The detect-then-segment model (``models.detection.MaskRCNNLite``): it trains on synthetic
nuclei, finds them, and runs through ``segment()`` as a zoo model."""

import json

import numpy as np
import pytest
import torch

from napari_nucleiseg import segment
from napari_nucleiseg.errors import FinetuneError, OptionError
from napari_nucleiseg.evaluation.evaluate import evaluate_model
from napari_nucleiseg.inference.preprocess import prepare_channels
from napari_nucleiseg.models import build
from napari_nucleiseg.outofcore.run import segment_out_of_core
from napari_nucleiseg.synthetic import synthetic_nuclei
from napari_nucleiseg.training.dataset import Sample
from napari_nucleiseg.training.finetune.run import fine_tune
from napari_nucleiseg.training.trainer import DetectorTrainer, fit
from napari_nucleiseg.zoo import get_entry, user_models_dir
from napari_nucleiseg.zoo.weights_file import save_weights

CONFIG = {"base": 8, "channels": 32}  # a narrower network than the shipped one, for speed
STEPS = 60


def _sample(seed, shape=(160, 160)):
    img, lab = synthetic_nuclei(shape, n_nuclei=shape[0] * shape[1] // 1000, radius=(7, 11), seed=seed)
    return Sample(prepare_channels(img, channels=1, kind="fluorescence"), lab, f"s{seed}"), img


@pytest.fixture(scope="module")
def trained():
    """A small detector after STEPS steps on six synthetic images, and its losses per step."""
    torch.manual_seed(0)
    model = build("maskrcnn_lite", **CONFIG)
    samples = [_sample(i)[0] for i in range(6)]
    trainer = DetectorTrainer(model, samples, torch.device("cpu"), total_steps=STEPS, lr=3e-3,
                              batch_size=2, crop=128, warmup=5, augment={"elastic": 0.0, "scale": (0.8, 1.25)})
    losses = []
    for _ in range(STEPS):
        trainer.step()
        losses.append(trainer.last_losses)
    return model.eval(), losses


def test_detector_loss_drops(trained):
    _, losses = trained
    assert set(losses[0]) == {"rpn_objectness", "rpn_box", "classifier", "box", "mask"}
    mean = lambda key, part: np.mean([row[key] for row in part])  # noqa: E731
    # the classification and mask losses; the box losses count over the positive RoIs, whose share
    # grows as the proposals improve, so their sum need not fall in a short run
    for key in ("rpn_objectness", "classifier", "mask"):
        assert mean(key, losses[-10:]) < 0.7 * mean(key, losses[:3]), key
    assert mean("rpn_objectness", losses[-10:]) < 0.3 * mean("rpn_objectness", losses[:3])


def test_trained_detector_finds_most_synthetic_nuclei(trained):
    model, _ = trained
    held_out = [_sample(100 + i)[0] for i in range(2)]
    m = evaluate_model(model, held_out, torch.device("cpu"))
    assert m["tp"] / m["n_true"] > 0.7, m
    assert m["f1"] > 0.7, m


def _install(model) -> str:
    """``model`` as the user model ``det-test``; its name."""
    folder = user_models_dir()
    save_weights(folder / "det-test.pt", model, "maskrcnn_lite", CONFIG)
    card = {"name": "det-test", "architecture": "maskrcnn_lite", "config": CONFIG, "outputs": ["instances"],
            "postprocess": {"threshold": 0.5, "min_size": 8}, "sizing": {"target_diameter": 18}}
    (folder / "det-test.json").write_text(json.dumps(card))
    assert get_entry("det-test").outputs_instances
    return "det-test"


def test_out_of_core_refuses_a_detector_in_one_line(trained, tmp_path):
    name = _install(trained[0])
    with pytest.raises(OptionError, match=r"^model 'det-test' is a detector .*out-of-core[^\n]*$"):
        segment_out_of_core(_sample(3)[1], tmp_path / "out", model=name)
    assert not (tmp_path / "out").exists()


def test_fine_tuning_refuses_a_detector(trained):
    name = _install(trained[0])
    img, lab = synthetic_nuclei((96, 96), n_nuclei=8, seed=5)
    with pytest.raises(FinetuneError, match="'det-test' is a detector"):
        fine_tune(name, [(img, lab)], steps=2)


def test_detector_runs_in_segment_as_a_zoo_model(trained):
    _install(trained[0])
    _, image = _sample(200, shape=(203, 181))  # odd-sized
    seg = segment(image, model="det-test", tile=128, overlap=48)
    assert seg.labels.shape == image.shape and seg.labels.max() > 10
    assert not seg.border.any() and 0 <= seg.probability.min() and seg.probability.max() <= 1
    conf = seg.table["confidence"].to_numpy()
    # labels are numbered by falling detection score, which is the confidence column
    assert (conf >= 0.5).all() and (np.diff(conf) <= 1e-6).all()
    empty = segment(np.full((70, 90), 100, np.uint16), model="det-test")
    assert empty.labels.max() == 0 and len(empty.table) == 0 and "confidence" in empty.table


def test_detector_training_resumes_from_last_pt(tmp_path):
    samples = [_sample(i, shape=(96, 96))[0] for i in range(2)]
    logs = []
    kw = dict(steps_per_epoch=2, batch_size=1, crop=64, log=logs.append)
    fit("maskrcnn_lite", CONFIG, samples, [], tmp_path, epochs=1, **kw)
    res = fit("maskrcnn_lite", CONFIG, samples, [], tmp_path, epochs=2, **kw)
    assert any(line.startswith("resumed from") for line in logs)
    assert [row["epoch"] for row in res["history"]] == [1, 2]
    assert (tmp_path / "best.pt").exists() and (tmp_path / "history.json").exists()
