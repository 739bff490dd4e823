"""Uneven light in bright-field images: measured, evened out, the same in memory and out of core."""

import numpy as np
import pytest
import skimage.data
import tifffile

from napari_nucleiseg import segment
from napari_nucleiseg.errors import OptionError
from napari_nucleiseg.evaluation.metrics import evaluate_image
from napari_nucleiseg.inference import kinds, preprocess
from napari_nucleiseg.inference.illumination import Illumination, measure_illumination
from napari_nucleiseg.options import SegmentOptions
from napari_nucleiseg.synthetic import synthetic_nuclei


def _lit(image: np.ndarray, darkest: float) -> np.ndarray:
    """``image`` under light falling from 100 % at the left to ``darkest`` at the right."""
    ramp = np.linspace(1.0, darkest, image.shape[1], dtype=np.float32)
    light = ramp[:, None] if image.ndim == 3 else ramp
    return (image.astype(np.float32) * light).astype(image.dtype)


@pytest.fixture(scope="module")
def brightfield():
    return synthetic_nuclei((512, 512), n_nuclei=60, brightfield=True, seed=1)


def test_the_light_is_measured_from_the_background(brightfield):
    image, _ = brightfield
    even = measure_illumination(image.astype(np.float32))
    assert even.ratio > 0.85 and even.strength == 0.0 and even.field_of(image.shape) is None
    lit = measure_illumination(_lit(image, 0.3).astype(np.float32))
    assert lit.ratio == pytest.approx(0.3, abs=0.05) and lit.strength == 1.0
    field = lit.field_of(image.shape)
    assert field.max() == pytest.approx(1.0, abs=0.02)
    # the field falls as the light does, column by column
    assert np.allclose(field.mean(axis=0), np.linspace(1.0, 0.3, 512), atol=0.06)
    # a strength between 0 and 1 for light that is only a little uneven
    assert 0.0 < measure_illumination(_lit(image, 0.55).astype(np.float32)).strength < 1.0
    assert measure_illumination(np.zeros((4, 4))) == Illumination(shape=(4, 4))
    sparse = np.zeros((64, 64), np.float32)
    sparse[::16, ::16] = 5.0  # a few bright pixels: every block's 90th percentile is 0
    assert measure_illumination(sparse).strength == 0.0
    assert Illumination.from_dict(lit.to_dict()) == lit


def test_a_darkened_side_does_not_make_bright_field_look_like_fluorescence(brightfield):
    image, _ = brightfield
    dark = _lit(image, 0.2)
    assert kinds.image_kind(dark) == "brightfield"  # "fluorescence" before evening out
    fluorescence, _ = synthetic_nuclei((512, 512), n_nuclei=40, seed=2)
    assert kinds.image_kind(fluorescence) == "fluorescence"
    assert kinds.image_kind(_lit(fluorescence, 0.3)) == "fluorescence"


def test_a_faint_stain_colour_is_judged_evened_out(brightfield, monkeypatch):
    grey, _ = brightfield
    grey = grey.astype(np.float32) / grey.max() * 240
    pink = np.stack([grey, grey * 0.94, grey * 0.97], -1).astype(np.uint8)  # red a little above blue
    lit = _lit(pink, 0.3)
    assert kinds.image_kind(pink) == kinds.image_kind(lit) == "stained"
    # judged on the uneven pixels, the dark side's fainter colour made it grey bright-field
    monkeypatch.setattr(kinds, "illumination_of", lambda image: Illumination())
    assert kinds.image_kind(lit) == "brightfield"


def test_uneven_bright_field_is_segmented_as_an_even_one(brightfield):
    image, truth = brightfield
    even = segment(image, model="unet16")
    assert even.evened == 0.0 and even.settings["light_ratio"] > 0.85
    for darkest in (0.3, 0.2):  # AP@0.5 before evening out: 0.73 and 0.0
        seg = segment(_lit(image, darkest), model="unet16")
        assert seg.settings["image_kind"] == "brightfield" and seg.evened == 1.0
        assert evaluate_image(truth, seg.labels)["ap50"] >= evaluate_image(truth, even.labels)["ap50"] - 0.05


def test_even_light_off_leaves_the_pixels_alone(brightfield):
    image, _ = brightfield
    lit = _lit(image, 0.3)
    on, off = segment(lit, model="unet16"), segment(lit, model="unet16", even_light=False)
    assert on.evened == 1.0 and off.evened == 0.0 and off.settings["even_light"] is False
    assert not np.array_equal(on.probability, off.probability)
    # evenly lit: the same result either way
    np.testing.assert_array_equal(segment(image, model="unet16").labels,
                                  segment(image, model="unet16", even_light=False).labels)


def test_even_light_option_is_checked_and_on_the_command_line():
    import argparse

    from napari_nucleiseg.cli.options import add_segment_options, segment_options

    with pytest.raises(OptionError, match="even_light"):
        SegmentOptions(even_light="no")
    assert SegmentOptions(even_light=np.bool_(False)).even_light is False
    parser = argparse.ArgumentParser()
    add_segment_options(parser)
    assert segment_options(parser.parse_args([])).even_light is True
    assert segment_options(parser.parse_args(["--no-even-light"])).even_light is False


def test_fluorescence_is_never_evened_out():
    image, _ = synthetic_nuclei((256, 256), n_nuclei=8, seed=3)  # sparse: its blocks vary a lot
    seg = segment(_lit(image, 0.3), model="unet16")
    assert seg.settings["image_kind"] == "fluorescence" and seg.evened == 0.0


@pytest.mark.parametrize("channels", [1, 2])
def test_blocks_are_evened_out_as_the_whole_image_is(tmp_path, channels):
    pytest.importorskip("zarr")
    from napari_nucleiseg.outofcore import open_source
    from napari_nucleiseg.outofcore.stats import gather_stats, prepare_block

    image = _lit(skimage.data.immunohistochemistry(), 0.3)
    path = tmp_path / "ihc.tif"
    tifffile.imwrite(path, image, photometric="rgb")
    stats, _, _ = gather_stats(open_source(path), stain_signal_for=lambda kind: "red")
    assert stats.kind == kinds.image_kind(image) == "stained" and stats.light.strength == 1.0
    assert gather_stats(open_source(path), even_light=False)[0].light.strength == 0.0
    whole = preprocess.prepare_channels(image, channels=channels, kind="stained", stain_signal="red")
    y0, x0 = 137, 301
    block = prepare_block(image[y0:y0 + 200, x0:x0 + 150], stats, channels, origin=(y0, x0))
    assert np.allclose(block, whole[..., y0:y0 + 200, x0:x0 + 150], atol=1e-5)
    # evened out: the inverted background of the dark right side is as dark as the left's
    signal = whole if channels == 1 else whole[0]
    assert abs(np.median(signal[:, :64]) - np.median(signal[:, -64:])) < 0.1
