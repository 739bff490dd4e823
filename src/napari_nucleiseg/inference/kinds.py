"""What kind of image this is (fluorescence, grey bright-field or stained colour), and the light over
a bright-field image, from its pixels alone."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .denoise import noise_level
from .illumination import Illumination, measure_illumination
from .overview import channel_max, channel_min, subsample_steps


def looks_brightfield(image: np.ndarray) -> bool:
    """True when the background is bright (bright-field / H&E): nuclei are then dark.

    Works on the brightest channel of a colour image (grey as it is). Its *floor*, the 5th
    percentile as a fraction of the 99.9th, is small for fluorescence (a near-black
    background) and large for bright-field. On the DSB images the floor is below 0.25 for
    every fluorescence image and above 0.45 for every bright-field or stained one. A floor
    below 0.1 means fluorescence; a colour image with a floor above 0.35 is bright-field
    (a pink H&E field with a dark luminance too); otherwise a median above the middle of the
    1-99 percentile span means a bright background (a grey fluorescence image with a camera
    offset can have a high floor, so grey images are not judged by the floor alone). A colour
    image in stain colours (``_stain_coloured``) with a floor above 0.1 is bright-field too: no
    DSB image changes kind by this rule, and 5 of the 27 MoNuSeg H&E tiles, dense and dark,
    were taken for fluorescence without it. An image lit so unevenly that its dark side looks like
    a fluorescence background is judged again evened out (``illumination``), if its floor is then
    above ``EVENED_FLOOR``.
    """
    img = np.asarray(image)
    sy, sx = subsample_steps(img.shape, 256)
    over = img[::sy, ::sx]
    colour = over.ndim == 3
    sub = _brightest(over)
    levels = _levels(sub)
    if _bright_background(levels, (lambda: over[..., :3].astype(np.float32)) if colour else None):
        return True
    if _floor(levels) < BLACK_FLOOR:
        return False
    light = measure_illumination(sub)  # an unevenly lit bright-field image has a dark side
    field = light.field(np.arange(sub.shape[0]), np.arange(sub.shape[1]))
    if field is None:
        return False
    evened = _levels(sub / field)
    return _floor(evened) > EVENED_FLOOR and _bright_background(
        evened, (lambda: over[..., :3].astype(np.float32) / field[..., None]) if colour else None)


#: An unevenly lit image is bright-field only if, evened out, its floor (``looks_brightfield``) is
#: above this: at least 0.46 for our bright-field and stained images made uneven, at most 0.20 for
#: the DSB fluorescence images whose blocks vary most (docs/robustness.md).
EVENED_FLOOR = 0.35
#: A floor below this is a near-black background: fluorescence, however unevenly lit (half the DSB
#: fluorescence images; a bright-field image lit this unevenly has lost its dark side to noise).
BLACK_FLOOR = 0.05


def _brightest(overview: np.ndarray) -> np.ndarray:
    """The brightest channel of an overview, float32, shifted to no negative values."""
    sub = (channel_max(overview) if overview.ndim == 3 else overview).astype(np.float32)
    return sub - min(float(sub.min()), 0.0)


def overview_illumination(overview: np.ndarray, steps: tuple[int, int]) -> Illumination:
    """The light over an image (``illumination.measure_illumination``) from its 256-pixel
    overview ``image[::steps[0], ::steps[1]]`` (``subsample_steps(shape, 256)``), as
    ``looks_brightfield`` measures it."""
    return measure_illumination(_brightest(np.asarray(overview)), steps)


def illumination_of(image: np.ndarray) -> Illumination:
    """The light over a bright-field image (``overview_illumination`` of its 256-pixel overview)."""
    img = np.asarray(image)
    sy, sx = subsample_steps(img.shape, 256)
    return overview_illumination(img[::sy, ::sx], (sy, sx))


def _levels(sub: np.ndarray) -> np.ndarray:
    """The 1st, 5th, 50th, 99th and 99.9th percentiles ``looks_brightfield`` judges by."""
    return np.percentile(sub, (1, 5, 50, 99, 99.9))


def _floor(levels: np.ndarray) -> float:
    """The 5th percentile as a fraction of the 99.9th (0 for an image without positive values)."""
    return float(levels[1] / levels[4]) if levels[4] > 0 else 0.0


def _bright_background(levels: np.ndarray, rgb: Callable[[], np.ndarray] | None) -> bool:
    """The rule of ``looks_brightfield`` on the ``_levels`` of an overview's brightest channel
    (``rgb``: makes its float32 colour pixels, None for grey)."""
    lo, p5, med, hi, top = levels
    if top <= 0 or hi <= lo:
        return False
    floor = p5 / top
    if floor < 0.1:
        return False
    if rgb is not None and (floor > 0.35 or _stain_coloured(rgb(), top)):
        return True
    return float(med) > lo + 0.5 * (hi - lo)


def _stain_coloured(rgb: np.ndarray, top: float) -> bool:
    """Stain colours: red and blue differ (not grey) and even the weakest channel is bright over
    most of the image (purple, pink, brown); fluorescence dyes leave one channel near black. Dense,
    dark H&E tiles (MoNuSeg) with a low floor are bright-field by this test."""
    return red_blue_difference(rgb) > 0.02 * top and float(np.median(channel_min(rgb))) > 0.1 * top


def red_blue_difference(rgb: np.ndarray) -> float:
    """Mean absolute red-blue difference of an RGB overview, smoothed first (Gaussian, sigma 2 px),
    less what the pixel noise of that difference alone leaves after the smoothing.

    Stain colours are alike over whole regions; the independent noise of each channel of a grey
    image (a colour camera, a noisy grey image saved as RGB) is not, and smoothing removes most of
    it. Photon-limited noise can be strong enough to survive the smoothing (a grey bright-field
    image was read as stained), so its expected share, from the difference's own noise level
    (``denoise.noise_level``), is taken off: noise alone cannot make an image look stained
    (``docs/robustness.md``)."""
    from scipy import ndimage as ndi

    diff = rgb[..., 0].astype(np.float32) - rgb[..., 2].astype(np.float32)
    # white noise of SD s, Gaussian-smoothed with sigma 2: SD s / (2 * 2 * sqrt(pi)), mean |.| that * sqrt(2 / pi)
    floor = noise_level(diff) / (4.0 * np.sqrt(np.pi)) * np.sqrt(2.0 / np.pi)
    return max(0.0, float(np.abs(ndi.gaussian_filter(diff, 2.0)).mean()) - floor)


KINDS = ("fluorescence", "brightfield", "stained")


def image_kind(image: np.ndarray, invert: bool | None = None) -> str:
    """``"fluorescence"``, ``"brightfield"`` (grey, dark nuclei) or ``"stained"`` (colour, dark nuclei).

    ``invert`` (dark nuclei on a bright background) is detected when None (``looks_brightfield``).
    The stain colours of an unevenly lit image are judged evened out (``colour_stats``).
    """
    img = np.asarray(image)
    if invert is None:
        invert = looks_brightfield(img)
    if not invert or img.ndim != 3:
        return kind_from(bool(invert), None, 0.0)
    sy, sx = subsample_steps(img.shape, 512)
    light = illumination_of(img).field(np.arange(0, img.shape[0], sy), np.arange(0, img.shape[1], sx))
    return kind_from(True, *colour_stats(img[::sy, ::sx], float(img[..., :3].max()), light))


def colour_stats(overview: np.ndarray, top: float, light: np.ndarray | None) -> tuple[float, float]:
    """``red_blue_difference`` of a colour image's 512-pixel overview and the image's brightest
    value ``top``, as ``kind_from`` takes them; of the image evened out by ``light``
    (``Illumination.field`` at the overview's pixels) when it is lit unevenly, the top then the
    evened overview's (the dark side of an unevenly lit image is less colourful)."""
    rgb = overview[..., :3].astype(np.float32)
    if light is None:
        return red_blue_difference(rgb), top
    rgb /= light[..., None]
    return red_blue_difference(rgb), float(rgb.max())


def kind_from(invert: bool, red_blue: float | None, top: float) -> str:
    """The rule of ``image_kind`` on its statistics: ``red_blue``, the ``red_blue_difference`` of a colour
    image's 512-pixel overview (None for grey), and ``top``, its brightest value (an
    out-of-core run gathers them block by block)."""
    if not invert:
        return "fluorescence"
    if red_blue is not None and top > 0 and red_blue > 0.02 * top:  # relative: any pixel type or range
        return "stained"
    return "brightfield"
