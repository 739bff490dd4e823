import numpy as np
import pytest
import torch

from napari_nucleiseg.inference.preprocess import prepare
from napari_nucleiseg.models import build
from napari_nucleiseg.synthetic import synthetic_nuclei
from napari_nucleiseg.training.augment import Augmenter, contact_from_labels, targets_from_labels
from napari_nucleiseg.training.dataset import Sample
from napari_nucleiseg.training.losses import bce_dice
from napari_nucleiseg.training.trainer import Trainer, fit


def _samples(n=3, shape=(96, 96)):
    out = []
    for i in range(n):
        img, lab = synthetic_nuclei(shape, n_nuclei=12, radius=(5, 8), touching=0.5, seed=i)
        out.append(Sample(prepare(img), lab, f"s{i}"))
    return out


def test_targets_have_border_ring_between_touching_nuclei():
    lab = torch.zeros(1, 1, 10, 10)
    lab[..., 2:8, 1:5] = 1
    lab[..., 2:8, 5:9] = 2
    t = targets_from_labels(lab)
    assert t[0, 0].sum() == 48
    assert t[0, 1, 4, 4] == 1 and t[0, 1, 4, 5] == 1  # the contact line is border
    assert t[0, 1, 4, 2] == 0  # inside, away from edges


def test_contact_marks_only_where_two_nuclei_touch():
    lab = torch.zeros(1, 1, 12, 12)
    lab[..., 2:8, 1:5] = 1
    lab[..., 2:8, 5:9] = 2  # touches nucleus 1
    lab[..., 10:12, 10:12] = 3  # alone
    c = contact_from_labels(lab)[0, 0]
    assert c[4, 4] == 1 and c[4, 5] == 1
    assert c[4, 2] == 0 and c[1, 2] == 0  # inside, and the outer edge of nucleus 1
    assert c[9:, 9:].sum() == 0


def test_contact_weight_raises_the_loss_of_a_merged_prediction():
    lab = torch.zeros(1, 1, 16, 16)
    lab[..., 4:12, 2:8] = 1
    lab[..., 4:12, 8:14] = 2
    y = targets_from_labels(lab)
    merged = torch.full_like(y, -6.0)
    merged[:, 0][lab[:, 0] > 0] = 6.0  # one blob, no border anywhere
    w = 1 + 10 * contact_from_labels(lab)
    assert bce_dice(merged, y, w) > bce_dice(merged, y) + 0.1
    assert torch.isclose(bce_dice(merged, y, torch.ones_like(w)), bce_dice(merged, y))


def test_trainer_with_contact_weight_steps_and_snapshots(tmp_path):
    samples = _samples(2, (64, 64))
    fit("unet", {"base": 4, "depth": 3}, samples, samples[:1], tmp_path, epochs=2,
        steps_per_epoch=2, batch_size=2, crop=32, val_every=1, log=lambda s: None,
        contact_weight=5.0, snapshots=True)
    assert sorted(p.name for p in tmp_path.glob("epoch_*.pt")) == ["epoch_001.pt", "epoch_002.pt"]


def test_augmenter_shapes_and_label_consistency():
    aug = Augmenter(size=64, seed=0)
    x, y = aug.batch(_samples(2), 4)
    assert x.shape == (4, 1, 64, 64) and y.shape == (4, 2, 64, 64)
    assert set(torch.unique(y).tolist()) <= {0.0, 1.0}
    assert y[:, 0].sum() > 0
    x, y, c = Augmenter(size=64, seed=0).batch(_samples(2), 4, contact=True)
    assert c.shape == (4, 1, 64, 64) and c.sum() > 0  # the synthetic nuclei touch
    assert bool((y[:, 1:2] >= c).all())  # contact pixels are border pixels


def test_dimming_darkens_some_nuclei_and_leaves_background_and_targets_alone():
    lab = torch.zeros(1, 1, 64, 64)
    x = torch.full((1, 1, 64, 64), 0.1)
    for i, (y0, x0) in enumerate([(5, 5), (5, 40), (40, 5), (40, 40)], start=1):
        lab[..., y0:y0 + 12, x0:x0 + 12] = i
        x[..., y0:y0 + 12, x0:x0 + 12] = 1.0
    aug = Augmenter(size=64, seed=3, dim_nuclei=1.0, dim_range=(0.2, 0.5))
    dimmed = aug._dim(x, lab)
    centres = [float(dimmed[0, 0, y0 + 6, x0 + 6]) for y0, x0 in [(5, 5), (5, 40), (40, 5), (40, 40)]]
    assert all(0.1 + 0.9 * 0.2 - 1e-4 <= c <= 1.0 + 1e-6 for c in centres)
    assert sum(c == 1.0 for c in centres) == 2  # this seed dims two of the four
    assert float(dimmed[0, 0, 3, 10]) == pytest.approx(0.1)  # just outside a dimmed nucleus
    assert torch.allclose(dimmed[..., 25:35, 25:35], x[..., 25:35, 25:35])  # background kept
    samples = _samples(2)
    x1, y1 = Augmenter(size=64, seed=0, dim_nuclei=1.0).batch(samples, 4)
    x0, y0 = Augmenter(size=64, seed=0).batch(samples, 4)
    assert torch.equal(y1, y0)  # same crops and targets, only intensities change
    assert not torch.equal(x1, x0)


def test_dimming_two_channel_crops_dims_each_channel_as_a_one_channel_crop():
    rng = np.random.default_rng(1)
    lab = torch.zeros(2, 1, 48, 48)
    lab[:, :, 8:20, 8:20], lab[:, :, 26:40, 20:34] = 1, 2
    x = torch.from_numpy(rng.random((2, 2, 48, 48)).astype(np.float32)) + lab
    two = Augmenter(size=48, seed=5, dim_nuclei=1.0)._dim(x, lab)
    for c in range(2):
        one = Augmenter(size=48, seed=5, dim_nuclei=1.0)._dim(x[:, c:c + 1], lab)
        torch.testing.assert_close(two[:, c:c + 1], one)
    assert not torch.equal(two, x)


def test_degradations_quantise_and_light_unevenly_and_leave_targets_alone():
    flat = torch.full((2, 1, 64, 64), 0.5)
    lit = Augmenter(size=64, seed=1, light=1.0)._uneven_light(flat)
    for img in lit[:, 0]:
        assert float(img.min()) < 0.5 * 0.95 or float(img.max()) > 0.5 * 1.05  # a ramp, not flat
        assert float(img.min()) >= 0.5 * 0.3 - 1e-6 and float(img.max()) <= 0.5 + 0.3 + 1e-6
    ramp = torch.linspace(0, 1, 64).repeat(2, 1, 64, 1)
    q = Augmenter(size=64, seed=1, quantize=1.0)._quantized(ramp)
    for img in q:
        assert 9 <= torch.unique(img).numel() <= 65  # 8-64 levels (both ends included)
    assert torch.equal(Augmenter(size=64, seed=1, quantize=0.0)._quantized(ramp), ramp)
    samples = _samples(2)
    x0, y0 = Augmenter(size=64, seed=0).batch(samples, 4)
    x1, y1 = Augmenter(size=64, seed=0, light=1.0, quantize=1.0, noise=0.2, blur=3.0).batch(samples, 4)
    assert torch.equal(y1, y0) and not torch.equal(x1, x0)  # same crops, only intensities change


def test_a_few_training_steps_lower_the_loss():
    torch.manual_seed(0)
    samples = _samples()
    x, y = Augmenter(size=64, seed=123).batch(samples, 8)  # a fixed held-out batch
    model = build("unet", base=8, depth=3)
    trainer = Trainer(model, samples, torch.device("cpu"), total_steps=60, lr=3e-3,
                      batch_size=4, crop=64, seed=0, warmup=1)

    def fixed_loss():
        model.eval()
        with torch.no_grad():
            return float(trainer.loss_fn(model(x).float(), y))

    before = fixed_loss()
    for _ in range(60):
        trainer.step()
    assert fixed_loss() < 0.8 * before


def test_fit_checkpoints_and_resumes(tmp_path):
    samples = _samples(2, (64, 64))
    kw = dict(steps_per_epoch=2, batch_size=2, crop=32, val_every=1, log=lambda s: None)
    fit("unet", {"base": 4, "depth": 3}, samples, samples[:1], tmp_path, epochs=1, **kw)
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()
    res = fit("unet", {"base": 4, "depth": 3}, samples, samples[:1], tmp_path, epochs=2, **kw)
    assert [h["epoch"] for h in res["history"]] == [1, 2]  # epoch 1 came from the checkpoint


def test_fit_can_start_from_trained_weights(tmp_path):
    from napari_nucleiseg.zoo.weights_file import save_weights

    torch.manual_seed(1)
    start = build("unet", base=4, depth=3)
    save_weights(tmp_path / "start.pt", start, "unet", {"base": 4, "depth": 3})
    samples = _samples(1, (64, 64))
    res = fit("unet", {"base": 4, "depth": 3}, samples, [], tmp_path / "run", epochs=1, steps_per_epoch=1,
              batch_size=2, crop=32, lr=1e-9, log=lambda s: None, init=tmp_path / "start.pt")
    from napari_nucleiseg.zoo import load_weights_file

    trained, _ = load_weights_file(tmp_path / "run" / "best.pt")
    w0 = start.state_dict()["head.weight"].half().float()
    assert torch.allclose(trained.state_dict()["head.weight"], w0, atol=1e-3)  # lr ~ 0: still the start
    assert res["history"][0]["epoch"] == 1


KIND_VALUE = {"fluorescence": 1.0, "stained": 2.0, "brightfield": 3.0}


def _kind_of_each_crop(monkeypatch, tmp_path, shares, steps=40, batch_size=50):
    """The image kind of every crop that ``fit`` trains on: each kind's images are one constant value."""
    kinds = ["fluorescence"] * 5 + ["stained"] * 2 + ["brightfield"]
    samples = [Sample(np.full((40, 40), KIND_VALUE[k], np.float32), np.zeros((40, 40), np.int32), f"s{i}", k)
               for i, k in enumerate(kinds)]
    drawn = []
    batch = Augmenter.batch

    def recording(self, *args, **kwargs):
        out = batch(self, *args, **kwargs)
        drawn.extend(out[0].amax(dim=(1, 2, 3)).round().tolist())
        return out

    monkeypatch.setattr(Augmenter, "batch", recording)
    fit("unet", {"base": 4, "depth": 2}, samples, [], tmp_path, epochs=1, steps_per_epoch=steps,
        batch_size=batch_size, crop=16, log=lambda s: None, shares=shares, augment={"intensity": False})
    by_value = {v: k for k, v in KIND_VALUE.items()}
    assert len(drawn) == steps * batch_size and set(drawn) <= set(by_value)
    return [by_value[v] for v in drawn]


@pytest.mark.parametrize("shares, expected", [
    ({"stained": 0.4, "brightfield": 0.25}, {"fluorescence": 0.35, "stained": 0.4, "brightfield": 0.25}),
    (None, {"fluorescence": 0.625, "stained": 0.25, "brightfield": 0.125}),  # uniform over the 8 images
])
def test_shares_give_each_image_kind_its_fraction_of_the_crops(monkeypatch, tmp_path, shares, expected):
    drawn = _kind_of_each_crop(monkeypatch, tmp_path, shares)
    n = len(drawn)
    for kind, p in expected.items():
        spread = 4 * (p * (1 - p) / n) ** 0.5  # 4 binomial standard deviations
        assert abs(drawn.count(kind) / n - p) < spread, (kind, drawn.count(kind) / n, p)


def test_resuming_a_run_of_another_architecture_is_one_clear_error(tmp_path):
    samples = _samples(2)
    kw = dict(steps_per_epoch=1, batch_size=2, val_every=1, device="cpu")
    fit("unet", {"base": 4, "depth": 3}, samples, [], tmp_path, epochs=1, **kw)
    with pytest.raises(ValueError, match="holds a run of unet"):
        fit("unet", {"base": 8, "depth": 3}, samples, [], tmp_path, epochs=2, **kw)
    with pytest.raises(ValueError, match="architecture 'unet'"):
        build("unet", bas=4)


@pytest.mark.parametrize("args, message", [
    (["--config", "[4]"], "JSON object"),
    (["--epochs", "0"], "at least 1"),
    (["--val-every", "0"], "at least 1"),
    (["--config", '{"depth": 0}'], "architecture 'unet' with {'depth': 0} cannot be built"),
    (["--arch", "residual_unet", "--config", '{"base": 1}'], "cannot run"),
    (["--config", '{"out_channels": 1}'], "gives 1 output map(s)"),
    (["--lr", "-1"], "positive number"),  # these two were found after the data was loaded
    (["--device", "bogus"], "bogus"),
])
def test_train_command_refuses_bad_values_in_one_line(tmp_path, capsys, monkeypatch, args, message):
    from napari_nucleiseg.cli import main

    loaded = []
    monkeypatch.setattr("napari_nucleiseg.training.dataset.split_dsb", lambda *a, **k: loaded.append(1) or ([], []))
    try:
        rc = main(["train", "--out", str(tmp_path / "run"), "--data", str(tmp_path), *args])
    except SystemExit as exc:  # argparse's own refusal
        rc = exc.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and message in err[-1] and not (tmp_path / "run").exists()
    assert not loaded  # refused before any data was read


def test_train_command_with_no_training_pairs_is_one_line(tmp_path, capsys):
    from napari_nucleiseg.cli import main

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    (tmp_path / "val.txt").write_text("")
    assert main(["train", "--out", str(tmp_path / "run"), "--data", str(tmp_path)]) == 1
    assert "no training images" in capsys.readouterr().err


def test_loaded_labels_are_renumbered_so_float32_crops_keep_large_ids_apart(tmp_path):
    import tifffile

    from napari_nucleiseg.training.dataset import load_samples

    img, lab = synthetic_nuclei((64, 64), n_nuclei=6, seed=2)
    big = np.where(lab > 0, lab + 40_000_000, 0).astype(np.int32)  # beyond float32's whole numbers
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    tifffile.imwrite(tmp_path / "images" / "a.tif", img)
    tifffile.imwrite(tmp_path / "labels" / "a.tif", big)
    sample = load_samples(tmp_path)[0]
    assert sample.labels.max() == len(np.unique(lab)) - 1
    np.testing.assert_array_equal(sample.labels > 0, lab > 0)
    assert len(np.unique(sample.labels.astype(np.float32))) == len(np.unique(lab))
