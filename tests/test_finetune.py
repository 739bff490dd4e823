"""Fine-tuning core, its safeguards, the ``nucleiseg finetune`` command and user-model management."""

import hashlib
import math
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_nucleiseg import zoo
from napari_nucleiseg.cli import main
from napari_nucleiseg.errors import (
    EmptyLabelsError,
    FinetuneCancelled,
    FinetuneError,
    ModelNameError,
    ShapeMismatchError,
)
from napari_nucleiseg.inference.pipeline import segment
from napari_nucleiseg.models import build
from napari_nucleiseg.synthetic import synthetic_nuclei
from napari_nucleiseg.training import finetune
from napari_nucleiseg.training.finetune import fine_tune, prepare_pairs

FAST = dict(batch_size=2, crop=64, device="cpu", replay=0.0)


@pytest.fixture
def tiny():
    """A small U-Net saved as the user model 'tiny' (the base model of these tests)."""
    torch.manual_seed(0)
    model = build("unet", base=8, depth=3)
    return zoo.save_user_model("tiny", model, "unet", {"base": 8, "depth": 3},
                               {"description": "tiny test model", "postprocess": {"min_size": 4}})


@pytest.fixture
def field():
    return synthetic_nuclei((128, 128), n_nuclei=12, radius=(6, 10), seed=1)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_few_steps_lower_the_loss_and_save_a_user_model_that_segments(tiny, field):
    parent_hash = _digest(tiny.weights)
    res = fine_tune("tiny", [field], steps=30, lr=3e-3, name="tiny-ft", **FAST)
    assert res.name == "tiny-ft" and res.entry.user and res.steps_done == 30
    assert len(res.losses) == 30
    assert np.mean(res.losses[-5:]) < np.mean(res.losses[:5])
    card = zoo.get_entry("tiny-ft").card
    assert card["parent"] == "tiny"
    assert card["finetune"]["images"][0]["nuclei"] == int(field[1].max())
    assert card["finetune"]["settings"]["lr"] == 3e-3
    assert len(card["finetune"]["loss_curve"]) == 30
    assert card["postprocess"]["min_size"] == 4  # the parent's tuned settings are inherited
    assert not card.get("default")
    assert _digest(tiny.weights) == parent_hash  # the base model is never modified
    new, blob = zoo.load_weights_file(res.entry.weights)
    old, _ = zoo.load_weights_file(tiny.weights)
    assert blob["architecture"] == "unet"
    changed = [k for k, v in new.state_dict().items() if v.is_floating_point()
               and not torch.allclose(v, old.state_dict()[k])]
    assert changed
    seg = segment(field[0], model="tiny-ft", device="cpu")
    assert seg.labels.shape == field[1].shape and seg.model == "tiny-ft"


def test_progress_reports_every_step_and_bn_statistics_stay_frozen(tiny, field):
    seen = []
    res = fine_tune("tiny", [field], steps=5, progress=seen.append, **FAST)
    assert [p.step for p in seen] == [1, 2, 3, 4, 5]
    assert seen[-1].fraction == pytest.approx(1.0)
    new, _ = zoo.load_weights_file(res.entry.weights)
    old, _ = zoo.load_weights_file(tiny.weights)
    bn = [k for k in old.state_dict() if k.endswith("running_mean")]
    assert bn and all(torch.allclose(new.state_dict()[k], old.state_dict()[k]) for k in bn)


def test_cancel_mid_run_keeps_a_usable_model(tiny, field):
    steps = {"n": 0}

    def progress(p):
        steps["n"] = p.step

    res = fine_tune("tiny", [field], steps=1000, progress=progress, cancel=lambda: steps["n"] >= 3, **FAST)
    assert res.cancelled and res.steps_done == 3
    assert "cancelled" in res.message
    card = zoo.get_entry(res.name).card
    assert card["finetune"]["cancelled"] is True
    seg = segment(field[0], model=res.name, device="cpu")
    assert seg.labels.shape == field[1].shape


def test_cancel_before_the_first_step_saves_nothing(tiny, field):
    with pytest.raises(FinetuneCancelled, match="before the first step"):
        fine_tune("tiny", [field], steps=10, cancel=lambda: True, name="never", **FAST)
    assert "never" not in [e.name for e in zoo.list_models()]


def test_validation_picks_the_weights_and_starts_from_the_base_score(tiny, field):
    val = synthetic_nuclei((128, 128), n_nuclei=12, radius=(6, 10), seed=2)
    res = fine_tune("tiny", [field], steps=6, validation=[val], validate_every=3, **FAST)
    steps = [s for s, _ in res.validation]
    assert steps == [0, 3, 6]
    assert res.base_score == res.validation[0][1]
    assert res.best_score == max(v for _, v in res.validation)
    # ties keep the earliest (the base model): a worse or equal model never replaces it
    first_best = next(s for s, v in res.validation if v == res.best_score)
    assert res.best_step == first_best
    assert zoo.get_entry(res.name).card["finetune"]["selected_by"] == "validation DSB score"


def _fp16(state):
    """A state dict as a saved model holds it (floating-point tensors through fp16)."""
    return {k: v.half().float() if v.is_floating_point() else v for k, v in state.items()}


def test_validation_keeps_the_weights_of_the_best_step_not_the_last(monkeypatch, tiny, field):
    from napari_nucleiseg.evaluation import evaluate

    scores = iter([0.2, 0.4, 0.9, 0.5, 0.3])  # the base model, then steps 2, 4, 6 and 8
    weights_at = []

    def scripted(model, *_args, **_kwargs):
        weights_at.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return {"dsb_score": next(scores)}

    monkeypatch.setattr(evaluate, "evaluate_model", scripted)
    val = synthetic_nuclei((128, 128), n_nuclei=12, radius=(6, 10), seed=2)
    res = fine_tune("tiny", [field], steps=8, lr=3e-3, validation=[val], validate_every=2, blend=1.0, **FAST)
    assert res.validation == [(0, 0.2), (2, 0.4), (4, 0.9), (6, 0.5), (8, 0.3)]
    assert (res.best_step, res.best_score, res.base_score) == (4, 0.9, 0.2)
    assert "0.200 -> 0.900 (step 4)" in res.message
    saved = zoo.load_weights_file(res.entry.weights)[0].state_dict()
    base, best, last = (_fp16(weights_at[i]) for i in (0, 2, 4))
    assert all(torch.equal(saved[k], best[k]) for k in saved)
    assert not all(torch.equal(saved[k], last[k]) for k in saved)
    assert not all(torch.equal(saved[k], base[k]) for k in saved)


def test_learning_rate_warms_up_then_decays_to_zero_over_the_steps(monkeypatch, tiny, field):
    lrs = []
    real_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    fine_tune("tiny", [field], steps=40, lr=1e-3, **FAST)
    # warm-up over a tenth of the steps or 5% of the run, whichever ends first, then cosine decay
    warm = [min(1.0, max((k + 1) / 4, k / 40 / 0.05)) for k in range(40)]
    expected = [1e-3 * w * 0.5 * (1 + math.cos(math.pi * k / 40)) for k, w in enumerate(warm)]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_replay_mixes_synthetic_fields_into_the_batches(monkeypatch, tiny, field):
    from napari_nucleiseg.training import trainer as train

    seen = []
    real_init = train.Trainer.__init__

    def init(self, model, samples, *args, **kwargs):
        seen.append([s.name for s in samples])
        real_init(self, model, samples, *args, **kwargs)

    monkeypatch.setattr(train.Trainer, "__init__", init)
    res = fine_tune("tiny", [field], steps=2, image_names=["mine"],
                    **{**FAST, "replay": 0.5, "replay_labels": "truth"})
    names = seen[0]
    assert names.count("mine") == sum(n.startswith("synthetic") for n in names) == 8
    settings = zoo.get_entry(res.name).card["finetune"]["settings"]
    assert settings["replay"] == 0.5 and settings["replay_labels"] == "truth"
    with pytest.raises(FinetuneError, match="replay"):
        fine_tune("tiny", [field], steps=2, **{**FAST, "replay": 1.0})


def test_replay_fields_labelled_by_the_base_model(tiny):
    from napari_nucleiseg.training.finetune.replay import replay_samples, teacher_labels

    class Blobs(torch.nn.Module):  # a "model" whose foreground is the bright pixels, no border
        def forward(self, x):
            return torch.cat([(x - 0.5) * 40, torch.full_like(x, -20.0)], dim=1)

    fields = list(replay_samples())[:2]
    out = teacher_labels(Blobs(), fields, torch.device("cpu"), {"threshold": 0.5, "border_threshold": 0.5,
                                                                  "min_size": 8})
    assert len(out) == 2 and all(o.labels.max() > 0 for o in out)
    assert all(o.image is f.image for o, f in zip(out, fields))  # same images, new labels


@pytest.mark.parametrize("steps", [None, 10_000])
def test_time_budget_stops_the_run(monkeypatch, tiny, field, steps):
    budget, lrs = 1.0, []
    real_step = torch.optim.AdamW.step

    def step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step)
    t_start = time.perf_counter()
    # an ignored budget fails here (cancelled after 20 budgets) instead of hanging for 10 000 steps
    res = fine_tune("tiny", [field], steps=steps, time_budget_s=budget,
                    cancel=lambda: time.perf_counter() - t_start > 20 * budget, **FAST)
    assert not res.cancelled
    assert budget <= res.seconds < 3 * budget
    assert 1 <= res.steps_done == len(lrs)
    if steps is not None:
        assert res.steps_done < steps
    assert lrs[-1] < 0.5 * max(lrs)  # the learning rate decays with the time used
    assert zoo.get_entry(res.name).card["finetune"]["settings"]["time_budget_s"] == budget


def test_shape_mismatch_is_refused_before_training(tiny, field):
    img, lab = field
    with pytest.raises(ShapeMismatchError, match="does not match"):
        fine_tune("tiny", [(img, lab[:100])], steps=2, **FAST)
    assert [e.name for e in zoo.list_models() if e.user] == ["tiny"]


def test_labels_without_nuclei_are_refused(tiny, field):
    img, lab = field
    with pytest.raises(EmptyLabelsError, match="no nuclei"):
        fine_tune("tiny", [(img, np.zeros_like(lab))], steps=2, **FAST)
    empty_corner = (0, 0, 20, 20)
    lab2 = lab.copy()
    lab2[:20, :20] = 0
    with pytest.raises(EmptyLabelsError, match="inside the rectangle"):
        fine_tune("tiny", [(img, lab2)], regions=[empty_corner], steps=2, **FAST)


def test_existing_or_invalid_names_are_refused(tiny, field):
    with pytest.raises(ModelNameError, match="exists already"):
        fine_tune("tiny", [field], steps=2, name="tiny", **FAST)
    with pytest.raises(ModelNameError, match="invalid"):
        fine_tune("tiny", [field], steps=2, name="no spaces/please", **FAST)


def test_default_names_never_collide(tiny, field):
    a = fine_tune("tiny", [field], steps=1, **FAST)
    b = fine_tune("tiny", [field], steps=1, **FAST)
    assert a.name == "tiny-finetuned" and b.name == "tiny-finetuned-2"


def test_regions_crop_and_single_value_labels_are_split(field):
    img, lab = field
    painted = (lab > 0).astype(np.int32)  # everything painted with label 1
    samples, info = prepare_pairs([(img, painted)], regions=[(10, 20, 90, 120)])
    assert samples[0].image.shape == (80, 100) == samples[0].labels.shape
    assert info[0]["region"] == [10, 20, 90, 120]
    assert samples[0].labels.max() > 1  # separate blobs became separate nuclei


def test_rgb_images_are_accepted(tiny):
    img, lab = synthetic_nuclei((96, 96), n_nuclei=8, brightfield=True, seed=3)
    rgb = np.stack([img, img // 2, img], axis=-1)
    res = fine_tune("tiny", [(rgb, lab)], steps=2, **FAST)
    assert zoo.get_entry(res.name).card["finetune"]["images"][0]["shape"] == [96, 96, 3]


def _write_pair(tmp_path, field, stem):
    import tifffile

    img, lab = field
    ip, lp = tmp_path / f"{stem}.tif", tmp_path / f"{stem}_labels.tif"
    tifffile.imwrite(ip, img)
    tifffile.imwrite(lp, lab)
    return str(ip), str(lp)


def test_cli_finetune_saves_a_user_model(tiny, field, tmp_path, capsys):
    ip, lp = _write_pair(tmp_path, field, "a")
    vp, vl = _write_pair(tmp_path, synthetic_nuclei((96, 96), n_nuclei=8, seed=4), "v")
    code = main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--name", "cli-ft",
                 "--steps", "3", "--batch-size", "2", "--device", "cpu", "--val-image", vp, "--val-labels", vl])
    assert code == 0
    card = zoo.get_entry("cli-ft").card
    assert card["finetune"]["images"][0]["name"] == "a.tif"
    assert card["finetune"]["validation_images"][0]["name"] == "v.tif"
    assert "saved 'cli-ft'" in capsys.readouterr().out
    assert card["finetune"]["settings"]["blend"] == finetune.DEFAULT_BLEND == 0.5
    code = main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--name", "cli-ft-full",
                 "--steps", "2", "--batch-size", "2", "--device", "cpu", "--blend", "1"])
    assert code == 0
    assert zoo.get_entry("cli-ft-full").card["finetune"]["settings"]["blend"] == 1.0


def test_cli_finetune_errors_are_one_line(tiny, field, tmp_path, capsys):
    ip, lp = _write_pair(tmp_path, field, "a")
    assert main(["finetune", "--model", "tiny", "--image", ip, "--image", ip, "--labels", lp,
                 "--steps", "2"]) == 1
    assert "one labels file for each image" in capsys.readouterr().err
    assert main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--name", "tiny",
                 "--steps", "2"]) == 1
    assert "exists already" in capsys.readouterr().err
    # 0 is a value, not "not given" (it became the default 200 steps)
    assert main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--minutes", "0"]) == 1
    assert "time budget must be positive" in capsys.readouterr().err
    assert main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--minutes", "nan"]) == 1
    assert "time budget must be positive" in capsys.readouterr().err  # NaN trained without end
    assert main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--lr", "nan"]) == 1
    assert "learning rate must be a positive number" in capsys.readouterr().err
    assert main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--channel", "-1"]) == 1
    assert "numbered from 0" in capsys.readouterr().err  # it trained on the last channel


def test_a_budget_spent_before_the_first_step_is_not_called_a_cancel(monkeypatch, tiny, field):
    from napari_nucleiseg.training.finetune import schedule

    now = [0.0]

    def clock():  # every reading of the run's clock is 100 s later than the one before
        now[0] += 100.0
        return now[0]

    monkeypatch.setattr(schedule, "time", SimpleNamespace(perf_counter=clock))
    with pytest.raises(FinetuneError, match="time budget ran out before the first step"):
        fine_tune("tiny", [field], time_budget_s=1.0, **FAST)


def test_cli_finetune_takes_the_nucleus_channel(tiny, field, tmp_path, capsys):
    import tifffile

    img, lab = field
    ip, lp = str(tmp_path / "two.tif"), str(tmp_path / "two_labels.tif")
    tifffile.imwrite(ip, np.stack([np.zeros_like(img), img]), metadata={"axes": "CYX"})  # marker, nuclei
    tifffile.imwrite(lp, lab)
    code = main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--name", "cli-ft-channel",
                 "--steps", "2", "--batch-size", "2", "--device", "cpu", "--channel", "1"])
    assert code == 0
    assert zoo.get_entry("cli-ft-channel").card["finetune"]["images"][0]["shape"] == list(img.shape)
    assert main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--name", "cli-ft-c3",
                 "--steps", "2", "--channel", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "two.tif" in err[-1] and "2 channels" in err[-1]


def test_cli_and_widget_work_call_the_same_core_function(monkeypatch, tiny, field, tmp_path):
    from napari_nucleiseg._napari.finetune_work import TrainingSet, run_finetune

    calls = []
    fake = SimpleNamespace(name="spy", entry=SimpleNamespace(weights=tmp_path / "spy.pt"))

    def spy(base_model, pairs, **kwargs):
        calls.append((base_model, len(pairs), kwargs.get("steps")))
        return fake

    monkeypatch.setattr(finetune, "fine_tune", spy)
    ip, lp = _write_pair(tmp_path, field, "a")
    assert main(["finetune", "--model", "tiny", "--image", ip, "--labels", lp, "--steps", "7"]) == 0
    out = run_finetune("tiny", TrainingSet([field], None, ["f"]), steps=9)
    assert out.result is fake
    assert calls == [("tiny", 1, 7), ("tiny", 1, 9)]


def test_user_model_rename_export_import_delete(tiny, tmp_path):
    zoo.rename_user_model("tiny", "tiny2")
    assert "tiny" not in [e.name for e in zoo.list_models()]
    path = zoo.export_model("tiny2", tmp_path / "m.pt")
    with pytest.raises(ValueError, match="exists already"):
        zoo.import_model(path)
    entry = zoo.import_model(path, name="tiny3")
    assert entry.user and entry.card["description"] == "tiny test model"
    model, _ = zoo.load_weights_file(entry.weights)
    assert isinstance(model, torch.nn.Module)
    zoo.delete_user_model("tiny2")
    assert [e.name for e in zoo.list_models() if e.user] == ["tiny3"]


@pytest.mark.parametrize("message", [
    "CUDA out of memory. Tried to allocate 2.00 GiB",
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
    "allocate 4294967296 bytes. Error code 12",
])
def test_out_of_memory_halves_the_batch_and_goes_on(monkeypatch, tiny, field, message):
    from napari_nucleiseg.training import trainer as train

    real_step = train.Trainer.step
    seen = []

    def step(self):
        seen.append(self.batch_size)
        if len(seen) == 1:
            raise RuntimeError(message)
        return real_step(self)

    monkeypatch.setattr(train.Trainer, "step", step)
    logs = []
    res = fine_tune("tiny", [field], steps=2, log=logs.append, **{**FAST, "batch_size": 4})
    assert seen == [4, 2, 2] and res.steps_done == 2
    assert any("out of memory" in line for line in logs)


def test_other_errors_during_training_are_not_swallowed(monkeypatch, tiny, field):
    from napari_nucleiseg.training import trainer as train

    def step(self):
        raise RuntimeError("something else")

    monkeypatch.setattr(train.Trainer, "step", step)
    with pytest.raises(RuntimeError, match="something else"):
        fine_tune("tiny", [field], steps=2, **FAST)


def test_blend_keeps_a_fraction_of_the_learnt_change(tiny, field):
    full = fine_tune("tiny", [field], steps=3, lr=3e-3, name="full", blend=1.0, **FAST)
    half = fine_tune("tiny", [field], steps=3, lr=3e-3, name="half", blend=0.5, **FAST)
    sd = {n: zoo.load_weights_file(e.weights)[0].state_dict() for n, e in
          (("base", tiny), ("full", full.entry), ("half", half.entry))}
    key = next(k for k, v in sd["base"].items() if v.is_floating_point() and "weight" in k)
    expected = sd["base"][key] + 0.5 * (sd["full"][key] - sd["base"][key])
    assert not torch.allclose(sd["full"][key], sd["base"][key])
    assert torch.allclose(sd["half"][key], expected, atol=2e-3)
    with pytest.raises(FinetuneError, match="blend"):
        fine_tune("tiny", [field], steps=1, blend=0.0, **FAST)


def test_user_replay_images_are_labelled_by_the_base_model_and_mixed_in(monkeypatch, tiny, field):
    from napari_nucleiseg.training import trainer as train
    from napari_nucleiseg.training.dataset import Sample

    teacher_inputs, seen = [], []

    def fake_teacher(model, samples, device, post):
        teacher_inputs.append([s.name for s in samples])
        return [Sample(s.image, (s.image > s.image.mean()).astype(np.int32), s.name) for s in samples]

    real_init = train.Trainer.__init__

    def init(self, model, samples, *args, **kwargs):
        seen.append([s.name for s in samples])
        real_init(self, model, samples, *args, **kwargs)

    monkeypatch.setattr(finetune.replay, "teacher_labels", fake_teacher)
    monkeypatch.setattr(train.Trainer, "__init__", init)
    other, _ = synthetic_nuclei((96, 96), n_nuclei=6, seed=7, brightfield=True)
    res = fine_tune("tiny", [field], steps=2, **{**FAST, "replay": 0.5}, replay_images=[other])
    assert ["replay image 1"] in teacher_inputs  # the user's image got the base model's labels
    assert "replay image 1" in seen[0]
    assert zoo.get_entry(res.name).card["finetune"]["settings"]["replay_images"] == 1


def test_replay_images_are_prepared_as_the_models_input(monkeypatch, field):
    from napari_nucleiseg.inference.denoise import measured_smoothing, smooth
    from napari_nucleiseg.inference.kinds import image_kind
    from napari_nucleiseg.inference.preprocess import prepare_channels

    torch.manual_seed(0)
    zoo.save_user_model("tiny-red", build("unet", base=8, depth=3), "unet", {"base": 8, "depth": 3},
                        {"description": "tiny model of the red channel", "stain_signal": "red"})
    img, _ = synthetic_nuclei((96, 96), n_nuclei=8, brightfield=True, seed=3)
    t = (img - img.min()) / np.ptp(img)  # purple nuclei on pink, as H&E
    rgb = np.stack([80 + 150 * t, 50 + 130 * t, 150 + 60 * t], axis=-1).astype(np.uint8)
    assert image_kind(rgb) == "stained"
    taught = []
    monkeypatch.setattr(finetune.replay, "teacher_labels", lambda model, samples, device, post: taught.extend(
        s for s in samples if s.name.startswith("replay image")) or [])
    fine_tune("tiny-red", [field], steps=1, **{**FAST, "replay": 0.5}, replay_images=[rgb])
    x = prepare_channels(rgb, kind="stained", stain_signal="red")
    np.testing.assert_allclose(taught[0].image, smooth(x, measured_smoothing(x)[1]), atol=1e-6)
    assert taught[0].kind == "stained"
    with pytest.raises(FinetuneError, match=r"^replay image 1: got two channels"):
        fine_tune("tiny-red", [field], steps=1, **{**FAST, "replay": 0.5}, replay_images=[rgb[..., :2]])


def test_two_channel_pairs_are_one_line_as_in_segment(tiny, field):
    img, lab = field
    with pytest.raises(FinetuneError, match=r"^image 1: got two channels .*choose the nucleus channel"):
        fine_tune("tiny", [(np.stack([img, img], -1), lab)], steps=1, **FAST)


def test_prepare_pairs_shrinks_large_corrected_nuclei_to_the_model_size():
    yy, xx = np.mgrid[:200, :200]
    labels = np.zeros((200, 200), np.int32)
    for i, (cy, cx) in enumerate([(50, 50), (50, 150), (150, 100)], 1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 20**2] = i  # 40 px across
    image = (labels > 0).astype(np.float32)
    (big,), (info,) = prepare_pairs([(image, labels)], target=None)
    assert big.image.shape == (200, 200) and info["zoom"] == 1.0
    (small,), (info,) = prepare_pairs([(image, labels)], target=20.0)
    assert small.image.shape == small.labels.shape == (100, 100) and info["zoom"] == pytest.approx(0.5, rel=0.02)
    assert set(np.unique(small.labels)) == {0, 1, 2, 3}
    (enlarged,), (info,) = prepare_pairs([(image, labels)], target=100.0)  # nuclei 0.4 of the target: enlarged
    assert enlarged.image.shape == enlarged.labels.shape == (400, 400) and info["zoom"] == pytest.approx(2.0, rel=0.02)
    assert set(np.unique(enlarged.labels)) == {0, 1, 2, 3}


def test_a_fine_tuned_model_keeps_its_bases_licence_and_outputs(field):
    torch.manual_seed(0)
    licence = "CC BY-NC-SA 4.0, non-commercial (test data)"
    zoo.save_user_model("tiny-nc", build("unet", base=8, depth=3), "unet", {"base": 8, "depth": 3},
                        {"description": "tiny", "licence": licence, "outputs": ["foreground", "border"]})
    res = fine_tune("tiny-nc", [field], steps=1, **FAST)
    card = zoo.get_entry(res.name).card
    assert card["licence"] == licence and card["outputs"] == ["foreground", "border"]
