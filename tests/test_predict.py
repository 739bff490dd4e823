import numpy as np
import pytest
import torch

from napari_nucleiseg.models import build
from napari_nucleiseg.errors import Cancelled
from napari_nucleiseg.inference.predict import predict_maps, tile_starts, uncertainty_map
from napari_nucleiseg.synthetic import synthetic_nuclei
from napari_nucleiseg.inference.preprocess import prepare


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build("unet", base=4, depth=3).eval()
    return m


def test_tile_starts_cover_everything():
    starts = tile_starts(1000, 256, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 32 for a, b in zip(starts, starts[1:]))
    assert tile_starts(100, 256, 32) == [0]


def test_tiled_equals_untiled_away_from_borders(model):
    image, _ = synthetic_nuclei((200, 240), n_nuclei=20, seed=3)
    x = prepare(image)
    dev = torch.device("cpu")
    whole = predict_maps(model, x, dev, tile=512, overlap=0)
    tiled = predict_maps(model, x, dev, tile=96, overlap=48)
    m = 16  # the image border itself is handled differently by tile padding
    diff = np.abs(whole["foreground"] - tiled["foreground"])[m:-m, m:-m]
    assert diff.max() < 0.02, diff.max()
    assert np.abs(whole["border"] - tiled["border"])[m:-m, m:-m].max() < 0.02


def test_tta_gives_variance_and_progress(model):
    x = prepare(synthetic_nuclei((64, 64), n_nuclei=4, seed=1)[0])
    calls = []
    maps = predict_maps(model, x, torch.device("cpu"), tile=32, overlap=8, tta=True,
                        progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] and len(calls) == calls[-1][1] > 1
    assert maps["variance"].max() > 0
    unc = uncertainty_map(maps["foreground"], maps["variance"])
    assert unc.shape == x.shape and 0 <= unc.min() and unc.max() <= 1


def test_tta_on_non_square_tiles_matches_plain_prediction_shape(model):
    x = prepare(synthetic_nuclei((48, 80), n_nuclei=4, seed=2)[0])
    plain = predict_maps(model, x, torch.device("cpu"))
    tta = predict_maps(model, x, torch.device("cpu"), tta=True)
    assert tta["foreground"].shape == plain["foreground"].shape == x.shape
    # the identity view is one of the eight, so the TTA mean stays close to the plain map
    assert np.abs(tta["foreground"] - plain["foreground"]).mean() < 0.1


def test_cancel_stops_prediction(model):
    x = prepare(synthetic_nuclei((64, 64), n_nuclei=4, seed=1)[0])
    with pytest.raises(Cancelled):
        predict_maps(model, x, torch.device("cpu"), tile=32, overlap=8, cancel=lambda: True)


def test_uncertainty_is_highest_at_half():
    p = np.array([0.0, 0.5, 1.0], np.float32)
    u = uncertainty_map(p, np.zeros_like(p))
    assert u[1] == pytest.approx(1.0) and u[0] < 0.01 and u[2] < 0.01
