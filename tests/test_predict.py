from contextlib import nullcontext

import numpy as np
import pytest
import torch

from napari_nucleiseg import zoo
from napari_nucleiseg.device import autocast_dtype
from napari_nucleiseg.errors import Cancelled, OptionError
from napari_nucleiseg.inference.predict import predict_maps, tile_layout, tile_starts, uncertainty_map
from napari_nucleiseg.inference.preprocess import prepare
from napari_nucleiseg.models import build
from napari_nucleiseg.synthetic import synthetic_nuclei


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build("unet", base=4, depth=3).eval()
    return m


@pytest.fixture(scope="module")
def trained():
    """The shipped default model on the CPU: a real, spatially varying output."""
    model, _, dev = zoo.load_model("default", "cpu")
    return model, dev


def _near_seams(length, tile, overlap, width=4):
    """True within ``width`` pixels of a tile edge that lies inside the image."""
    near = np.zeros(length, bool)
    size, starts = tile_layout(length, tile, overlap)
    for s in starts[1:]:
        near[s:s + width] = True
    for s in starts[:-1]:
        near[s + size - width:s + size] = True
    return near


def _unrotated_views(model, x, dev):
    """Foreground of the model on the 8 flips/rotations of ``x``, each turned back by hand."""
    amp = autocast_dtype(dev)
    views = []
    for flip in (False, True):
        for k in range(4):
            view = torch.from_numpy(np.rot90(x.T if flip else x, k).copy())[None, None]
            with torch.inference_mode(), torch.autocast("cpu", dtype=amp) if amp else nullcontext():
                p = torch.sigmoid(model(view).float())[0, 0].numpy()
            p = np.rot90(p, -k)
            views.append(p.T if flip else p)
    return np.stack(views)


@pytest.mark.parametrize("length,tile,overlap", [(2048, 1024, 64), (1040, 1024, 64), (1388, 512, 64),
                                                 (400, 256, 128), (5000, 100, 99), (33, 32, 0)])
def test_tile_layout_covers_with_the_fewest_even_tiles(length, tile, overlap):
    size, starts = tile_layout(length, tile, overlap)
    assert size <= tile and starts[0] == 0 and starts[-1] + size == length
    assert all(overlap <= a + size - b for a, b in zip(starts, starts[1:]))  # neighbours overlap enough
    steps = np.diff(starts)
    assert steps.max() - steps.min() <= 1  # evenly spaced
    # one tile fewer, even of `tile` pixels, could not cover `length` with that overlap
    assert (len(starts) - 2) * (tile - overlap) + tile < length


def test_tile_layout_examples():
    assert tile_layout(2048, 1024, 64) == (736, [0, 656, 1312])  # 3 x 736, not 3 x 1024 (the old layout)
    assert tile_layout(1024, 1024, 64) == (1024, [0])
    assert tile_layout(300, 1024, 64) == (300, [0])  # one tile: the image itself
    with pytest.raises(OptionError, match="overlap"):
        tile_layout(300, 64, 64)


def test_tile_starts_cover_everything():
    starts = tile_starts(1000, 256, 32)
    assert starts[0] == 0 and starts[-1] == 1000 - 256
    assert all(b - a <= 256 - 32 for a, b in zip(starts, starts[1:]))
    assert tile_starts(100, 256, 32) == [0]


def test_tiled_equals_untiled_away_from_borders(trained):
    model, dev = trained
    x = prepare(synthetic_nuclei((400, 480), n_nuclei=60, seed=3)[0])
    whole = predict_maps(model, x, dev, tile=1024, overlap=0)
    tiled = predict_maps(model, x, dev, tile=256, overlap=128)
    diff = np.maximum(*(np.abs(whole[k] - tiled[k]) for k in ("foreground", "border")))
    m = 16  # the image border itself is handled differently by tile padding
    assert diff[m:-m, m:-m].mean() < 0.003  # measured 0.0011; a tile shifted by one pixel: 0.016
    # a tile's own edge (little context) must get little weight: measured 0.027; flat window 0.16
    seams = _near_seams(400, 256, 128)[:, None] | _near_seams(480, 256, 128)[None, :]
    assert np.quantile(diff[seams], 0.99) < 0.12


def test_tta_gives_variance_and_progress(model):
    x = prepare(synthetic_nuclei((64, 64), n_nuclei=4, seed=1)[0])
    calls = []
    maps = predict_maps(model, x, torch.device("cpu"), tile=32, overlap=8, tta=True,
                        progress=lambda d, t: calls.append((d, t)))
    assert calls[-1][0] == calls[-1][1] and len(calls) == calls[-1][1] > 1
    assert maps["variance"].max() > 0
    unc = uncertainty_map(maps["foreground"], maps["variance"])
    assert unc.shape == x.shape and 0 <= unc.min() and unc.max() <= 1


def test_tta_is_the_mean_and_variance_of_the_eight_unrotated_views(trained):
    model, dev = trained
    x = prepare(synthetic_nuclei((64, 96), n_nuclei=8, seed=2)[0])  # non-square: transposed views differ
    views = _unrotated_views(model, x, dev)
    tta = predict_maps(model, x, dev, tta=True)
    assert tta["foreground"].shape == x.shape
    np.testing.assert_allclose(tta["foreground"], views.mean(0), atol=1e-5)
    np.testing.assert_allclose(tta["variance"], views.var(0), atol=1e-5)
    disagree = views.std(0) > 0.05
    assert disagree.any() and (tta["variance"][disagree] > 1e-3).all()


def test_cancel_stops_prediction(model):
    x = prepare(synthetic_nuclei((64, 64), n_nuclei=4, seed=1)[0])
    with pytest.raises(Cancelled):
        predict_maps(model, x, torch.device("cpu"), tile=32, overlap=8, cancel=lambda: True)


def test_uncertainty_is_highest_at_half():
    p = np.array([0.0, 0.5, 1.0], np.float32)
    u = uncertainty_map(p, np.zeros_like(p))
    assert u[1] == pytest.approx(1.0) and u[0] < 0.01 and u[2] < 0.01
