import numpy as np
import pytest

from napari_nucleiseg.errors import InvalidImageError
from napari_nucleiseg.inference.checks import check_image
from napari_nucleiseg.inference.kinds import image_kind, looks_brightfield
from napari_nucleiseg.inference.preprocess import normalize, nucleus_signal, prepare
from napari_nucleiseg.synthetic import synthetic_nuclei


def test_fluorescence_is_not_inverted_brightfield_is():
    img, lab = synthetic_nuclei((128, 128), n_nuclei=10, seed=0)
    bf, lab_bf = synthetic_nuclei((128, 128), n_nuclei=10, seed=0, brightfield=True)
    assert not looks_brightfield(img.astype(np.float32))
    assert looks_brightfield(bf.astype(np.float32))
    for im, lb in ((img, lab), (bf, lab_bf)):
        x = prepare(im)
        assert x.dtype == np.float32
        assert x[lb > 0].mean() > x[lb == 0].mean() + 0.3  # nuclei come out bright


def test_rgb_and_16bit_inputs_normalise_to_unit_range():
    img, _ = synthetic_nuclei((64, 64), n_nuclei=5, seed=1)
    rgb = np.stack([img // 256] * 3 + [np.full_like(img // 256, 255)], -1).astype(np.uint8)
    for im in (img, rgb):
        x = prepare(im)
        assert -0.1 < np.percentile(x, 1) < 0.1 and 0.9 < np.percentile(x, 99.8) < 1.1


@pytest.mark.parametrize("arr,msg", [
    (np.zeros((0, 0)), "empty"),
    (np.full((16, 16), np.nan, np.float32), "NaN"),
    (np.zeros((2, 3, 16, 16)), "dimensions"),
    (np.zeros((5, 16, 16)), "stacks"),
    (np.zeros((4, 4)), "too small"),
])
def test_bad_arrays_are_rejected_with_a_reason(arr, msg):
    with pytest.raises(InvalidImageError, match=msg):
        check_image(arr)


def _stained_field():
    """Purple nuclei on a pale background with a pink (eosin) band that is darker in luminance."""
    img = np.full((96, 96, 3), (235, 225, 240), np.uint8)
    img[:, 60:] = (225, 90, 150)  # pink stroma
    yy, xx = np.mgrid[:96, :96]
    lab = np.zeros((96, 96), np.int32)
    for i, (cy, cx) in enumerate(((25, 25), (70, 30), (48, 78)), start=1):
        disc = (yy - cy) ** 2 + (xx - cx) ** 2 < 100
        img[disc] = (110, 60, 160)
        lab[disc] = i
    return img, lab


def test_image_kind_tells_fluorescence_brightfield_and_stained_apart():
    fl, _ = synthetic_nuclei((96, 96), n_nuclei=6, seed=2)
    bf, _ = synthetic_nuclei((96, 96), n_nuclei=6, seed=2, brightfield=True)
    stained, _ = _stained_field()
    assert image_kind(fl) == "fluorescence"
    assert image_kind(bf) == "brightfield"
    assert image_kind(np.stack([bf] * 3, -1)) == "brightfield"
    assert image_kind(stained) == "stained"


def test_stained_nuclei_come_out_bright_on_a_dark_background():
    img, lab = _stained_field()
    x = prepare(img)
    stroma = np.zeros(lab.shape, bool)
    stroma[:, 62:] = True
    stroma &= lab == 0
    pale = (lab == 0) & ~stroma
    pale[:, 58:] = False
    assert x[lab > 0].mean() > x[stroma].mean() > x[pale].mean()
    assert x[lab > 0].mean() - x[pale].mean() > 0.8
    # the darkest channel, inverted: a nucleus pixel equals 1 - its min channel, rescaled
    darkest = img.min(-1).astype(np.float32)
    np.testing.assert_allclose(x, normalize(darkest.max() - darkest), atol=1e-5)


def test_the_red_stain_signal_keeps_eosin_and_dab_dark():
    from napari_nucleiseg.inference.preprocess import nucleus_signal

    # haematoxylin (blue-purple) absorbs red; eosin (pink) and DAB (brown) hardly do
    colours = {"haematoxylin": (70, 60, 150), "eosin": (235, 120, 200), "dab": (190, 120, 60), "glass": (245, 245, 245)}
    img = np.zeros((4, 16, 3), np.uint8)
    for i, c in enumerate(colours.values()):
        img[i] = c
    darkest = nucleus_signal(img, invert=True)
    red = nucleus_signal(img, invert=True, stain_signal="red")
    h, e, d = red[0, 0], red[1, 0], red[2, 0]
    assert h > 3 * max(e, d)  # in the red channel only haematoxylin is dark
    assert darkest[2, 0] > darkest[0, 0] * 0.9  # the darkest channel takes DAB for a nucleus
    with pytest.raises(ValueError, match="stain_signal"):
        nucleus_signal(img, invert=True, stain_signal="green")


def test_colour_fluorescence_uses_the_brightest_channel():
    fl, lab = synthetic_nuclei((96, 96), n_nuclei=6, seed=3)
    blue = np.zeros(fl.shape + (3,), fl.dtype)
    blue[..., 2] = fl
    np.testing.assert_allclose(prepare(blue), prepare(fl), atol=1e-5)


def test_pink_tissue_whose_luminance_is_dark_is_still_stained():
    # eosin-red stroma over most of the field: the luminance median is dark, as on a
    # fluorescence image, but no channel has a dark background
    img, lab = _stained_field()
    img[:, 20:] = np.where(lab[:, 20:, None] > 0, img[:, 20:], np.array((230, 110, 170), np.uint8))
    assert image_kind(img) == "stained"
    x = prepare(img)
    assert x[lab > 0].mean() > x[lab == 0].mean() + 0.3


def test_dim_fluorescence_with_a_flat_background_is_not_brightfield():
    # a near-black, flat background a few grey levels high and a few bright nuclei:
    # the median sits high in the 1-99 percentile span, but the background is black
    rng = np.random.default_rng(0)
    img = rng.integers(1, 5, (128, 128)).astype(np.uint8)
    img[30:36, 30:36] = 200
    img[80:86, 90:96] = 120
    assert not looks_brightfield(img)
    assert image_kind(np.stack([img] * 3, -1)) == "fluorescence"


def test_grey_fluorescence_with_a_camera_offset_is_not_brightfield():
    img, lab = synthetic_nuclei((128, 128), n_nuclei=10, seed=4)
    dim = (500 + img.astype(np.float32) / img.max() * 400).astype(np.uint16)
    assert not looks_brightfield(dim)
    x = prepare(dim)
    assert x[lab > 0].mean() > x[lab == 0].mean() + 0.3


def test_a_dense_dark_he_field_is_stained_not_fluorescence(monkeypatch):
    from napari_nucleiseg.inference import kinds

    rng = np.random.default_rng(0)
    img = np.empty((128, 128, 3), np.float32)
    img[:] = (120, 45, 110)  # dark purple tissue nearly everywhere (a dense MoNuSeg-like tile)
    img[:8] = (240, 225, 235)  # a little pale background
    yy, xx = np.mgrid[:128, :128]
    for cy, cx in rng.integers(10, 118, (60, 2)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < 40] = (70, 30, 65)
    img = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
    assert image_kind(img) == "stained"
    monkeypatch.setattr(kinds, "_stain_coloured", lambda rgb, top: False)
    monkeypatch.setattr(kinds, "measure_illumination", lambda bright: kinds.Illumination())
    assert image_kind(img) == "fluorescence"  # what the floor and median rules alone said
    monkeypatch.undo()
    fluo = np.zeros((128, 128, 3), np.uint8)
    fluo[..., 2] = 40  # blue dye on black, a hazy background
    fluo[40:60, 40:60, 2] = 250
    fluo[..., 0] = 5
    assert image_kind(fluo) == "fluorescence"


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.float64])
@pytest.mark.parametrize("invert,signal", [(False, "darkest"), (True, "darkest"), (True, "red")])
def test_nucleus_signal_picks_channels_before_converting_to_float(dtype, invert, signal):
    rng = np.random.default_rng(0)
    rgba = (rng.random((20, 30, 4)) * 250).astype(dtype)
    rgb = rgba[..., :3].astype(np.float32)
    channel = rgb[..., 0] if signal == "red" else rgb.min(-1) if invert else rgb.max(-1)
    expected = channel.max() - channel if invert else channel
    got = nucleus_signal(rgba, invert, signal)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)


def test_a_photon_limited_grey_brightfield_image_in_rgb_stays_brightfield():
    # a grey bright-field field saved as RGB whose channels carry independent photon noise (about
    # 16 photons in the bright background): strong enough to survive the smoothing of the colour
    # test, which read it as stained until the noise's share was taken off
    img, _ = synthetic_nuclei((256, 256), n_nuclei=25, brightfield=True, noise=0.0, seed=3)
    photons = 1 + 15 * img.astype(np.float32) / img.max()
    rng = np.random.default_rng(0)
    rgb = np.clip(rng.poisson(np.repeat(photons[..., None], 3, -1)) * (255 / 22.5), 0, 255).astype(np.uint8)
    assert image_kind(rgb) == "brightfield"
    # a stained image keeps its colour under the same noise
    pink = np.stack([photons, 0.6 * photons, 0.9 * photons], -1)
    stained = np.clip(rng.poisson(pink) * (255 / 22.5), 0, 255).astype(np.uint8)
    assert image_kind(stained) == "stained"


@pytest.mark.parametrize("noise", [1.5, 3.0])
def test_a_dim_grey_image_with_noise_in_each_channel_stays_fluorescence(noise):
    # a dim grey fluorescence field saved as RGB (background ~7, nuclei ~35 of 255) whose channels
    # carry independent noise (a colour camera): the noise makes red and blue differ pixel by
    # pixel, which must not read as stain colour (it did: DSB validation images became "stained")
    img, lab = synthetic_nuclei((256, 256), n_nuclei=25, noise=0.0, seed=3)
    grey = 7 + 28 * img.astype(np.float32) / img.max()
    rng = np.random.default_rng(0)
    rgb = np.clip(np.round(grey[..., None] + rng.normal(0, noise, (256, 256, 3))), 0, 255).astype(np.uint8)
    assert image_kind(rgb) == "fluorescence"
    x = prepare(rgb)
    assert x[lab > 0].mean() > x[lab == 0].mean() + 0.3


def test_a_stained_image_is_stained_at_any_intensity_range():
    from napari_nucleiseg.inference.kinds import image_kind
    from napari_nucleiseg.synthetic import synthetic_nuclei

    img, _ = synthetic_nuclei((128, 128), n_nuclei=10, brightfield=True, seed=3)
    t = (img - img.min()) / np.ptp(img)
    rgb = np.stack([80 + 150 * t, 50 + 130 * t, 150 + 60 * t], axis=-1)  # purple nuclei on pink, as H&E
    assert image_kind(rgb.astype(np.uint8)) == "stained"
    for top in (65535.0, 1.0, 0.5, 0.25):
        assert image_kind((rgb / 255 * top).astype(np.float32)) == "stained", top


def test_one_saturated_pixel_changes_no_nucleus():
    from napari_nucleiseg import segment
    from napari_nucleiseg.synthetic import synthetic_nuclei

    img, _ = synthetic_nuclei((256, 256), n_nuclei=20, seed=4)
    img = (img.astype(np.float32) / img.max() * 200 + 10).astype(np.uint16)
    clean = segment(img, device="cpu")
    hot = img.copy()
    hot[128, 128] = 65535  # a camera's hot pixel
    seg = segment(hot, device="cpu")
    assert seg.labels.max() == clean.labels.max()
    assert (np.abs(seg.probability - clean.probability) > 0.5).sum() <= 5


def test_the_nuclei_of_a_sparse_image_are_not_clipped():
    from napari_nucleiseg.inference.preprocess import normalize, normalize_bounds

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:384, :384]
    img = rng.normal(20, 3, (384, 384)) + 180 * np.exp(-(((yy - 60) ** 2 + (xx - 70) ** 2) / 24.5) ** 2)
    img = np.clip(img, 0, 255).astype(np.float32)  # one nucleus: 0.07 % of the pixels
    lo, scale, floor, ceiling = normalize_bounds(img)
    assert (img.max() - lo) / scale > 10 and ceiling > (img.max() - lo) / scale
    np.testing.assert_allclose(normalize(img), (img - lo) / scale, rtol=1e-6)
