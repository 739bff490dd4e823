import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_nucleiseg import segment
from napari_nucleiseg.errors import OptionError
from napari_nucleiseg.inference.denoise import (
    MAX_SIGMA,
    NOISE_FROM,
    NOISE_FULL,
    WINDOW,
    measured_smoothing,
    noise_level,
    noise_window,
    quantisation_noise,
    smooth,
    smoothing_for,
)
from napari_nucleiseg.options import SegmentOptions
from napari_nucleiseg.synthetic import synthetic_nuclei


def _clean_field(seed=0):
    """Smooth blobs in [0, 1] with no pixel noise."""
    img, lab = synthetic_nuclei((256, 256), n_nuclei=25, noise=0.0, seed=seed)
    img = ndi.gaussian_filter(img.astype(np.float32), 1.0)
    return img / img.max(), lab


@pytest.mark.parametrize("sd", [0.01, 0.03, 0.08])
def test_noise_level_measures_the_pixel_noise_not_the_nuclei(sd):
    img, _ = _clean_field()
    assert noise_level(img) < 0.005  # edges of nuclei are a minority of pixels
    noisy = img + np.random.default_rng(1).normal(0, sd, img.shape).astype(np.float32)
    assert noise_level(noisy) == pytest.approx(sd, rel=0.15)


def test_smoothing_ramps_from_none_to_full():
    assert smoothing_for(0.0) == smoothing_for(NOISE_FROM) == 0.0
    assert 0 < smoothing_for((NOISE_FROM + NOISE_FULL) / 2) < MAX_SIGMA
    assert smoothing_for(NOISE_FULL) == smoothing_for(1.0) == MAX_SIGMA
    x = np.random.default_rng(0).random((2, 40, 50)).astype(np.float32)
    assert smooth(x, 0.0) is x
    out = smooth(x, 1.0)
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(out[1], ndi.gaussian_filter(x[1], 1.0), atol=1e-6)  # planes stay apart


def test_the_noise_window_is_centred_and_bounded():
    ys, xs = noise_window((3000, 500))
    assert (ys.start, ys.stop - ys.start) == ((3000 - WINDOW) // 2, WINDOW) and (xs.start, xs.stop) == (0, 500)
    assert measured_smoothing(np.zeros((2, 2), np.float32)) == (0.0, 0.0)


def test_segment_smooths_noisy_images_only_and_says_so():
    img, lab = _clean_field(seed=2)
    clean = (img * 200 + 10).astype(np.uint8)
    a = segment(clean, model="unet16")
    assert a.settings["smoothing"] == 0.0 and a.settings["noise"] < NOISE_FROM
    np.testing.assert_array_equal(a.labels, segment(clean, model="unet16", denoise=False).labels)
    noisy = np.clip(img * 200 + 10 + np.random.default_rng(3).normal(0, 25, img.shape), 0, 255).astype(np.uint8)
    b = segment(noisy, model="unet16")
    assert b.settings["denoise"] and b.settings["smoothing"] == MAX_SIGMA
    off = segment(noisy, model="unet16", denoise=False)
    assert off.settings["smoothing"] == 0.0 and off.settings["noise"] == b.settings["noise"]
    # smoothing makes the probability map calmer in the background
    bg = lab == 0
    assert b.probability[bg].std() < off.probability[bg].std()


def test_denoise_must_be_a_bool():
    with pytest.raises(OptionError, match="denoise"):
        SegmentOptions(denoise="yes")
    assert SegmentOptions(denoise=np.bool_(False)).denoise is False


def test_cli_no_denoise():
    import argparse

    from napari_nucleiseg.cli.options import add_segment_options, segment_options

    parser = argparse.ArgumentParser()
    add_segment_options(parser)
    assert segment_options(parser.parse_args([])).denoise is True
    assert segment_options(parser.parse_args(["--no-denoise"])).denoise is False


def test_each_plane_of_a_stack_is_judged_on_its_own():
    from napari_nucleiseg.inference.stack import segment_any

    img, _ = _clean_field(seed=4)
    clean = (img * 200 + 10).astype(np.uint8)
    noisy = np.clip(clean + np.random.default_rng(5).normal(0, 25, img.shape), 0, 255).astype(np.uint8)
    seg = segment_any(np.stack([clean, noisy]), SegmentOptions(model="unet16"))
    assert seg.settings["smoothing"] == [0.0, MAX_SIGMA] and seg.smoothing == MAX_SIGMA
    assert seg.settings["noise"][0] < NOISE_FROM < NOISE_FULL < seg.settings["noise"][1]


def test_the_rounding_of_few_grey_levels_counts_as_noise():
    img, _ = _clean_field(seed=6)
    for levels in (4, 8, 30, 200):
        x = np.round(img * levels) / levels  # a normalised integer image spanning ``levels`` grey levels
        assert quantisation_noise(x) == pytest.approx(1 / levels / np.sqrt(12), rel=1e-3)
    assert noise_level(np.round(img * 4) / 4) < NOISE_FROM  # flat background: the pixel noise misses it
    assert measured_smoothing(np.round(img * 4) / 4)[1] == MAX_SIGMA
    assert measured_smoothing(np.round(img * 200) / 200)[1] == 0.0  # a well-exposed 8-bit image
    assert quantisation_noise(img) < 1e-4  # floating-point values lie on no coarse lattice
    assert quantisation_noise(np.ones((8, 8), np.float32)) == 0.0


def test_a_dim_8_bit_image_is_smoothed_and_a_bright_one_not():
    img, lab = _clean_field(seed=7)
    bright = (img * 200 + 10).astype(np.uint8)
    dim = np.round(img * 4 + 1).astype(np.uint8)  # nuclei 4 grey levels above the background
    assert segment(bright, model="unet16").settings["smoothing"] == 0.0
    seg = segment(dim, model="unet16")
    assert seg.settings["smoothing"] == MAX_SIGMA and seg.settings["noise"] >= NOISE_FULL


def test_out_of_core_smooths_a_dim_8_bit_image_as_segment_does(tmp_path):
    pytest.importorskip("zarr")
    import tifffile

    from napari_nucleiseg.outofcore import open_source
    from napari_nucleiseg.outofcore.stats import gather_stats, measure_smoothing

    img, _ = _clean_field(seed=8)
    dim = np.round(img * 4 + 1).astype(np.uint8)
    path = tmp_path / "dim.tif"
    tifffile.imwrite(path, dim)
    stats = gather_stats(open_source(path))[0]
    assert measure_smoothing(open_source(path), stats).smoothing == MAX_SIGMA
    assert segment(dim, model="unet16").settings["smoothing"] == MAX_SIGMA
