"""Two-channel input (nucleus signal + haematoxylin) and the distance-to-outline output."""

import numpy as np
import torch

from napari_nucleiseg import segment, zoo
from napari_nucleiseg.inference.predict import predict_maps
from napari_nucleiseg.inference.preprocess import haematoxylin, prepare, prepare_channels
from napari_nucleiseg.models import build
from napari_nucleiseg.synthetic import synthetic_nuclei
from napari_nucleiseg.training.augment import distance_from_labels


def _he_like(seed=0):
    """Pink eosin background with purple (haematoxylin) discs and one brown (DAB) disc."""
    rng = np.random.default_rng(seed)
    img = np.empty((64, 64, 3), np.float32)
    img[:] = (235, 170, 200)  # eosin
    yy, xx = np.mgrid[:64, :64]
    haem = ((yy - 20) ** 2 + (xx - 20) ** 2 < 64) | ((yy - 44) ** 2 + (xx - 20) ** 2 < 64)
    dab = (yy - 32) ** 2 + (xx - 46) ** 2 < 64
    img[haem] = (80, 60, 150)
    img[dab] = (140, 90, 40)
    return np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8), haem, dab


def test_the_haematoxylin_plane_tells_nuclei_from_dab():
    img, haem, dab = _he_like()
    h = haematoxylin(img)
    assert h[haem].mean() > 2 * h[dab].mean()
    x = prepare_channels(img, channels=2)
    assert x.shape == (2, 64, 64)
    np.testing.assert_allclose(x[0], prepare(img), atol=1e-6)
    assert x[1][haem].mean() > x[1][dab].mean() + 0.3  # the darkest channel alone sees both


def test_fluorescence_repeats_the_nucleus_signal():
    img = synthetic_nuclei((48, 48), n_nuclei=4, seed=3)[0]
    x = prepare_channels(img, channels=2)
    np.testing.assert_array_equal(x[0], x[1])
    assert prepare_channels(img, channels=1).shape == (48, 48)


def test_distance_target_peaks_at_each_centre_and_dips_where_nuclei_touch():
    lab = np.zeros((1, 1, 30, 50), np.float32)
    lab[0, 0, 5:25, 5:25] = 1
    lab[0, 0, 5:25, 25:45] = 2
    d = distance_from_labels(torch.from_numpy(lab))[0, 0].numpy()
    assert d[lab[0, 0] == 0].max() == 0
    for i in (1, 2):
        assert np.isclose(d[lab[0, 0] == i].max(), 1.0)
    assert d[15, 24] < 0.2 and d[15, 25] < 0.2 and d[15, 14] > 0.8


def test_segment_runs_a_two_channel_model_with_a_distance_output(tmp_path, monkeypatch):
    monkeypatch.setenv("NUCLEISEG_USER_DIR", str(tmp_path))
    torch.manual_seed(0)
    net = build("residual_unet", base=8, depth=2, in_channels=2, out_channels=3)
    card = {"postprocess": {"seed": "distance", "distance_threshold": 0.5, "threshold": 0.3}}
    zoo.save_user_model("tiny-2ch", net, "residual_unet",
                        {"base": 8, "depth": 2, "in_channels": 2, "out_channels": 3}, card)
    img, _, _ = _he_like()
    maps = predict_maps(net.eval(), prepare_channels(img, channels=2), torch.device("cpu"))
    assert set(maps) == {"foreground", "border", "distance", "variance"}
    seg = segment(img, model="tiny-2ch", device="cpu", diameter=None)
    assert seg.labels.shape == (64, 64)
    assert seg.settings["seed"] == "distance"


def test_fine_tuning_a_two_channel_model_prepares_two_channels(tmp_path, monkeypatch):
    from napari_nucleiseg.training.finetune import fine_tune

    monkeypatch.setenv("NUCLEISEG_USER_DIR", str(tmp_path))
    torch.manual_seed(0)
    net = build("residual_unet", base=8, depth=2, in_channels=2, out_channels=3)
    zoo.save_user_model("tiny-2ch", net, "residual_unet",
                        {"base": 8, "depth": 2, "in_channels": 2, "out_channels": 3}, {})
    img, lab = synthetic_nuclei((96, 96), n_nuclei=8, seed=5)
    res = fine_tune("tiny-2ch", [(img, lab)], steps=2, batch_size=2, crop=64, device="cpu",
                    name="tiny-2ch-ft", replay=0.25)
    assert res.entry.name == "tiny-2ch-ft" and res.steps_done == 2
    assert zoo.load_model("tiny-2ch-ft", "cpu")[0].full[0].in_channels == 2
