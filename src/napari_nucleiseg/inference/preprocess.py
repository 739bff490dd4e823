"""Turn any supported image into the model input: one float32 channel, nuclei bright."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..errors import InvalidImageError
from .denoise import noise_level
from .illumination import Illumination, measure_illumination


def to_grey(image: np.ndarray) -> np.ndarray:
    """Collapse RGB(A) to grey (luminance, alpha dropped); 2D input is returned as float32."""
    img = np.asarray(image)
    if img.ndim == 3 and img.shape[-1] in (3, 4):
        rgb = img[..., :3].astype(np.float32)
        return rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    if img.ndim != 2:
        raise InvalidImageError(
            f"expected a 2D grey or RGB(A) image, got shape {img.shape}; "
            "split stacks into 2D planes first"
        )
    return img.astype(np.float32)


def channel_max(rgb: np.ndarray) -> np.ndarray:
    """Brightest of the first three channels of ``(..., C)`` pixels, in their own dtype (numpy's
    reduction over a short last axis is several times slower than two elementwise maxima)."""
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def channel_min(rgb: np.ndarray) -> np.ndarray:
    """Darkest of the first three channels of ``(..., C)`` pixels, in their own dtype."""
    return np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


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
    if red_blue is not None and red_blue > 0.02 * max(top, 1.0):
        return "stained"
    return "brightfield"


def normalize(grey: np.ndarray, low: float = 1.0, high: float = 99.8,
              bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Percentile normalisation: ``low`` -> 0 and ``high`` -> 1 (values outside are kept).

    ``bounds`` (``normalize_bounds`` of the whole image) normalises a part of an image as the
    whole would be."""
    lo, scale = normalize_bounds(grey, low, high) if bounds is None else np.float64(bounds)
    return ((grey - lo) / scale).astype(np.float32)


def subsample_steps(shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """Row and column steps of the ``size``-pixel overviews that the statistics here are taken on."""
    return max(1, shape[0] // size), max(1, shape[1] // size)


def normalize_bounds(grey: np.ndarray, low: float = 1.0, high: float = 99.8,
                     subsampled: bool = False) -> tuple[float, float]:
    """``(offset, scale)`` of ``normalize``, from a 512-pixel overview of ``grey`` (``subsampled``:
    ``grey`` is that overview already)."""
    sy, sx = (1, 1) if subsampled else subsample_steps(grey.shape, 512)
    lo, hi = np.percentile(grey[::sy, ::sx], (low, high))
    return lo, hi - lo if hi > lo else max(float(np.abs(hi)), 1.0)


def nucleus_channel(image: np.ndarray, channel: int | None) -> np.ndarray:
    """The nucleus channel ``channel`` of a multichannel image ``(Y, X, C)`` as a grey image; the
    image itself for ``channel`` None, or for channel 0 of a grey image.

    Raises
    ------
    InvalidImageError
        For a channel the image does not have (one line naming how many it has).
    """
    if channel is None:
        return image
    img = np.asarray(image)
    check_channel(channel, img.shape[-1] if img.ndim == 3 else 1)
    return img if img.ndim != 3 else np.ascontiguousarray(img[..., channel])


def check_channel(channel: int, channels: int, name: str = "") -> None:
    """Raise InvalidImageError (one line, prefixed with ``name``) when an image of ``channels``
    channels has no ``channel``."""
    if channel >= channels:
        have = f"{channels} channels (0-{channels - 1})" if channels > 1 else "one channel (0)"
        raise InvalidImageError(f"{name + ': ' if name else ''}channel {channel} asked for, but the image has {have}")


def check_image(image: np.ndarray) -> None:
    """Raise InvalidImageError for arrays that cannot be segmented."""
    img = np.asarray(image)
    if img.size == 0:
        raise InvalidImageError("the image is empty")
    if img.dtype == bool or not np.issubdtype(img.dtype, np.number) or np.issubdtype(img.dtype, np.complexfloating):
        raise InvalidImageError(f"unsupported pixel type {img.dtype}")
    if np.issubdtype(img.dtype, np.floating) and not np.all(np.isfinite(img)):
        raise InvalidImageError("the image contains NaN or infinite values")
    if img.ndim == 3 and img.shape[-1] == 2:
        raise InvalidImageError(
            f"got two channels (shape {img.shape}): choose the nucleus channel (channel=0 or 1; "
            "--channel on the command line; napari's reader opens each channel as its own layer)"
        )
    if img.ndim == 3 and img.shape[-1] not in (3, 4):
        raise InvalidImageError(
            f"got a 3D array of shape {img.shape}: segment stacks one plane at a time"
        )
    if img.ndim not in (2, 3):
        raise InvalidImageError(f"expected a 2D image, got {img.ndim} dimensions {img.shape}")
    if min(img.shape[:2]) < 8:
        raise InvalidImageError(f"the image is too small ({img.shape[0]}x{img.shape[1]} pixels)")


#: float32 keeps about 7 digits and a range of 1e-38..3e38: wider float data is rescaled to it first.
_FLOAT32_SAFE = (1e-30, 1e30)


def within_float32(image: np.ndarray) -> tuple[np.ndarray, float]:
    """``(image, scale)``: float data beyond what float32 holds (e.g. float64 values of 1e300, which
    would become infinite) divided by its largest magnitude, so that every later float32 step
    stays finite; other images unchanged with scale 1. Intensities are only compared
    relatively (percentile normalisation), so segmentation is unchanged by the scale."""
    img = np.asarray(image)
    if not np.issubdtype(img.dtype, np.floating) or img.dtype.itemsize <= 4 or img.size == 0:
        return img, 1.0
    top = float(np.max(np.abs(img)))
    if top == 0.0 or _FLOAT32_SAFE[0] <= top <= _FLOAT32_SAFE[1]:
        return img, 1.0
    return img / top, top


STAIN_SIGNALS = ("darkest", "red")


def nucleus_signal(image: np.ndarray, invert: bool, stain_signal: str = "darkest",
                   top: float | None = None, light: np.ndarray | None = None) -> np.ndarray:
    """One channel in which nuclei are bright.

    Fluorescence: the brightest channel (a nucleus stain may sit in any one colour).
    Bright-field: the darkness of the darkest channel (the strongest absorption), or with
    ``stain_signal="red"`` the darkness of the red channel: haematoxylin absorbs red light
    strongly, eosin and DAB hardly, so pink cytoplasm and brown DAB stay dark there while
    nuclei are bright (``docs/stain_input.md``). A model's card says which one it was trained
    with (``ModelEntry.stain_signal``). Grey images get plain (inverted) intensities. ``top`` (the
    whole image's brightest value of the channel) inverts a part of an image as the whole would be.
    ``light`` (``Illumination.field`` over the same pixels) divides the channel first, evening out
    uneven light; ``top`` is then of the evened channel.
    """
    if stain_signal not in STAIN_SIGNALS:
        raise ValueError(f"stain_signal must be one of {STAIN_SIGNALS}, not {stain_signal!r}")
    channel = _signal_channel(np.asarray(image), invert, stain_signal).astype(np.float32)
    if light is not None:
        channel = channel / light
    if not invert:
        return channel
    return (channel.max() if top is None else np.float32(top)) - channel


def _signal_channel(img: np.ndarray, invert: bool, stain_signal: str) -> np.ndarray:
    """The channel ``nucleus_signal`` inverts (or not), in the image's dtype (float32 conversion
    keeps the order of values: pick first, then convert)."""
    if img.ndim != 3:
        return img
    if invert and stain_signal == "red":
        return img[..., 0]
    return channel_min(img) if invert else channel_max(img)


def evened_tops(overview: np.ndarray, light: np.ndarray, stain_signal: str) -> tuple[float, float | None]:
    """Brightest values of an unevenly lit bright-field image once evened out, from its 512-pixel
    overview and ``light`` (``Illumination.field``) at the overview's pixels: of the channel
    ``nucleus_signal`` inverts, and of a colour image's colour planes (None for grey). Both paths,
    in memory and out of core, take them from the same overview."""
    channel = _signal_channel(overview, True, stain_signal).astype(np.float32) / light
    if overview.ndim != 3:
        return float(channel.max()), None
    return float(channel.max()), float((overview[..., :3].astype(np.float32) / light[..., None]).max())


#: Percentiles mapped to 0 and 1 by ``normalize`` (ours; a model imported from bioimage.io may name others).
PERCENTILES = (1.0, 99.8)


def prepare(image: np.ndarray, invert: bool | None = None, stain_signal: str = "darkest",
            percentiles: tuple[float, float] = PERCENTILES, light: np.ndarray | None = None,
            top: float | None = None) -> np.ndarray:
    """Model input for one 2D image: nucleus signal (see ``nucleus_signal``), percentile-normalised.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)`` or ``(Y, X, 3|4)``.
    invert : bool or None
        Dark nuclei on a bright background; None detects it.
    stain_signal : str
        ``"darkest"`` or ``"red"`` channel for dark nuclei in colour images (``nucleus_signal``).
    percentiles : (float, float)
        Mapped to 0 and 1 (``normalize``).
    light, top : optional
        Uneven light to even out, and the evened channel's brightest value (``nucleus_signal``).

    Returns
    -------
    numpy.ndarray
        float32 ``(Y, X)``, nuclei bright, roughly in [0, 1].
    """
    check_image(image)
    if invert is None:
        invert = looks_brightfield(image)
    return normalize(nucleus_signal(image, invert, stain_signal, top=top, light=light), *percentiles)


def haematoxylin(image: np.ndarray, top: float | None = None, light: np.ndarray | None = None) -> np.ndarray:
    """Haematoxylin density of a colour bright-field image (colour deconvolution, ``rgb2hed``).

    Nuclei are bright; brown DAB and pink eosin, which also absorb light, are not. ``top``: the
    whole image's brightest value, for a part of an image. ``light`` (``Illumination.field``)
    evens out uneven light first; ``top`` is then of the evened image.
    """
    from skimage.color import rgb2hed

    rgb = np.asarray(image)[..., :3].astype(np.float32)
    if light is not None:
        rgb /= light[..., None]
    top = max(float(rgb.max()) if top is None else float(top), 1.0)
    return rgb2hed(np.clip(rgb / top, 0.0, 1.0))[..., 0].astype(np.float32)


def prepare_channels(image: np.ndarray, invert: bool | None = None, channels: int = 1,
                     kind: str | None = None, stain_signal: str = "darkest",
                     percentiles: tuple[float, float] = PERCENTILES,
                     illumination: Illumination | None = None) -> np.ndarray:
    """Model input with ``channels`` planes: ``prepare`` alone (1) or ``(2, Y, X)``.

    The second plane is the normalised haematoxylin density of stained colour images
    (``haematoxylin``), so the model can tell a haematoxylin-stained nucleus from DAB or eosin,
    which are just as dark in the nucleus signal; every other image repeats the nucleus signal.
    ``kind`` (``image_kind``, when the caller knows it already) decides ``invert`` too;
    ``stain_signal`` (``nucleus_signal``) applies to stained images only; ``percentiles`` to
    every plane's normalisation. Bright-field and stained images lit unevenly are evened out first
    (``illumination``; measured by ``illumination_of`` when ``illumination`` is None).
    """
    if channels not in (1, 2):
        raise ValueError(f"models take 1 or 2 input channels, not {channels}")
    kind = kind or image_kind(image, invert)
    signal = stain_signal if kind == "stained" else "darkest"
    light, top, rgb_top = _evening(image, kind, signal, illumination)
    first = prepare(image, invert=kind != "fluorescence", stain_signal=signal, percentiles=percentiles,
                    light=light, top=top)
    if channels == 1:
        return first
    second = normalize(haematoxylin(image, rgb_top, light), *percentiles) if kind == "stained" else first
    return np.stack([first, second]).astype(np.float32)


def _evening(image: np.ndarray, kind: str, stain_signal: str, illumination: Illumination | None):
    """``light`` over the whole image and the evened ``top`` and colour top (``evened_tops``) of a
    bright-field image lit unevenly; Nones for an even one or fluorescence."""
    if kind == "fluorescence":
        return None, None, None
    img = np.asarray(image)
    light = (illumination if illumination is not None else illumination_of(img)).field_of(img.shape)
    if light is None:
        return None, None, None
    sy, sx = subsample_steps(img.shape, 512)
    return (light, *evened_tops(img[::sy, ::sx], light[::sy, ::sx], stain_signal))
