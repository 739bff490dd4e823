"""Turn any supported image into the model input: one float32 channel, nuclei bright."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidImageError
from .checks import check_image
from .illumination import Illumination
from .kinds import illumination_of, image_kind, looks_brightfield
from .overview import channel_max, channel_min, subsample_steps


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


#: Normalised values are kept within this range widened to twice the 0.01st and 99.99th
#: percentiles (``normalize_bounds``): a saturated camera pixel (hundreds) changed nuclei 160 px
#: away, while the nuclei of a sparse image may lie far above the 99.8th percentile and are kept.
#: Every DSB, MoNuSeg and DeepLIIF image lies inside (-0.22 to 6.44).
NORMALIZED_RANGE = (-2.0, 10.0)


def normalize(grey: np.ndarray, low: float = 1.0, high: float = 99.8,
              bounds: tuple[float, ...] | None = None) -> np.ndarray:
    """Percentile normalisation: ``low`` -> 0 and ``high`` -> 1; values outside are kept, within
    the outlier limits of ``normalize_bounds``.

    ``bounds`` (``normalize_bounds`` of the whole image) normalises a part of an image as the
    whole would be (a plan of an older version holds no limits: nothing is clipped)."""
    lo, scale, *limits = normalize_bounds(grey, low, high) if bounds is None else np.float64(bounds)
    out = (grey - lo) / scale
    return (np.clip(out, *limits) if limits else out).astype(np.float32)


def normalize_bounds(grey: np.ndarray, low: float = 1.0, high: float = 99.8,
                     subsampled: bool = False) -> tuple[float, float, float, float]:
    """``(offset, scale, floor, ceiling)`` of ``normalize``, from a 512-pixel overview of ``grey``
    (``subsampled``: ``grey`` is that overview already): the ``low`` and ``high`` percentiles map to 0
    and 1, and values are kept between ``NORMALIZED_RANGE`` widened to twice the 0.01st and 99.99th
    percentiles, so that only lone outliers (hot or dead pixels) are clipped."""
    sy, sx = (1, 1) if subsampled else subsample_steps(grey.shape, 512)
    lo, hi, rare_lo, rare_hi = np.percentile(grey[::sy, ::sx], (low, high, 0.01, 99.99))
    scale = hi - lo if hi > lo else max(float(np.abs(hi)), 1.0)
    floor = min(NORMALIZED_RANGE[0], 2 * (rare_lo - lo) / scale)
    ceiling = max(NORMALIZED_RANGE[1], 2 * (rare_hi - lo) / scale)
    return lo, scale, floor, ceiling


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
