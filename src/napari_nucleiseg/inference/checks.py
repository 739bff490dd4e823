"""Checks of an image before any work: what can be segmented, which channel, a float range float32 holds."""

from __future__ import annotations

import numpy as np

from ..errors import InvalidImageError, OptionError


def nucleus_channel(image: np.ndarray, channel: int | None) -> np.ndarray:
    """The nucleus channel ``channel`` of a multichannel image ``(Y, X, C)`` as a grey image; the
    image itself for ``channel`` None, or for channel 0 of a grey image.

    Raises
    ------
    InvalidImageError
        For a channel the image does not have (one line naming how many it has), and for a
        ``(Z, Y, X)`` stack of grey planes, whose last axis is not channels (it is at least as long
        as one of the others).
    """
    if channel is None:
        return image
    img = np.asarray(image)
    if img.ndim > 3:
        raise InvalidImageError(f"channel {channel} asked for an array of shape {img.shape}: expected one "
                                "image (Y, X, C), or a stack of them (Z, Y, X, C) segmented plane by plane")
    if img.ndim == 3 and img.shape[-1] > 4 and img.shape[-1] >= min(img.shape[:2]):
        raise InvalidImageError(
            f"channel {channel} asked for, but an array of shape {img.shape} looks like a stack of grey planes "
            "(Z, Y, X), not channels (Y, X, C): leave the channel unset, or give (Z, Y, X, C). If its first "
            "axis holds the channels (napari's own reader opens a channels-first file so), split them "
            "(right-click the layer > Split Stack) or open the file with the napari-nucleiseg reader")
    check_channel(channel, img.shape[-1] if img.ndim == 3 else 1)
    return img if img.ndim != 3 else np.ascontiguousarray(img[..., channel])


#: The smallest side of an image that is segmented (pixels).
MIN_SIDE = 8


def single_channel_dropped(image):
    """``image`` without a last axis of length 1 (``(Y, X, 1)`` is grey, ``(Z, Y, X, 1)`` a grey stack)."""
    if np.ndim(image) >= 3 and np.shape(image)[-1] == 1:
        return np.asarray(image)[..., 0]
    return image


def checked_scale(scale) -> tuple[float, float] | None:
    """A pixel size ``(y, x)`` (of a ``(z, y, x)`` scale, as napari gives a stack's, the last two):
    finite and not zero (a flipped axis' negative size counts as its length).

    Raises
    ------
    OptionError
        One line naming the scale given.
    """
    if scale is None:
        return None
    try:
        values = [abs(float(v)) for v in np.asarray(scale, dtype=float).ravel()]
    except (TypeError, ValueError):
        values = []
    if len(values) not in (2, 3) or not all(np.isfinite(v) and v > 0 for v in values):
        raise OptionError(f"scale {scale!r}: give the pixel size as (y, x), two finite numbers above 0")
    return values[-2], values[-1]


def check_channel(channel: int, channels: int, name: str = "") -> None:
    """Raise InvalidImageError (one line, prefixed with ``name``) when an image of ``channels``
    channels has no ``channel``."""
    if channel < 0:
        raise InvalidImageError(f"{name + ': ' if name else ''}channel {channel}: channels are numbered from 0")
    if channel >= channels:
        have = f"{channels} channels (0-{channels - 1})" if channels > 1 else "one channel (0)"
        raise InvalidImageError(f"{name + ': ' if name else ''}channel {channel} asked for, but the image has {have}")


def check_pixel_type(dtype, name: str = "") -> None:
    """Raise InvalidImageError (prefixed with ``name``) for pixel types that are not intensities
    (bool, complex, text, objects)."""
    dtype = np.dtype(dtype)
    if dtype == np.bool_ or not np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.complexfloating):
        raise InvalidImageError(f"{name + ': ' if name else ''}unsupported pixel type {dtype}")


#: The refusal of an image with NaN or infinite pixels, and what to do about it.
NOT_FINITE = ("the image contains NaN or infinite values (the padding of a stitched or registered image?): "
              "give those pixels the background's value first, e.g. numpy.nan_to_num(image, nan=background)")


def check_float_region(region: np.ndarray, name: str = "") -> None:
    """Raise InvalidImageError for a part of an image read block by block whose float values are
    not finite or lie beyond float32's range (``segment()`` rescales a whole image of those,
    ``within_float32``; block by block the whole image's range is not known in time)."""
    if not np.issubdtype(region.dtype, np.floating) or region.size == 0:
        return
    prefix = name + ": " if name else ""
    if not np.all(np.isfinite(region)):
        raise InvalidImageError(f"{prefix}{NOT_FINITE}")
    top = float(np.max(np.abs(region))) if region.dtype.itemsize > 4 else 0.0
    if top > _FLOAT32_SAFE[1]:
        raise InvalidImageError(f"{prefix}float values beyond float32's range (up to {top:.3g}): divide the "
                                "image by a constant first")


def check_image(image: np.ndarray) -> None:
    """Raise InvalidImageError for arrays that cannot be segmented."""
    img = np.asarray(image)
    if img.size == 0:
        raise InvalidImageError("the image is empty")
    check_pixel_type(img.dtype)
    if np.issubdtype(img.dtype, np.floating) and not np.all(np.isfinite(img)):
        raise InvalidImageError(NOT_FINITE)
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
    if min(img.shape[:2]) < MIN_SIDE:
        raise InvalidImageError(f"the image is too small ({img.shape[0]}x{img.shape[1]} pixels)")


#: float32 keeps about 7 digits and a range of 1e-38..3e38: wider float data is rescaled to it first.
_FLOAT32_SAFE = (1e-30, 1e30)


def within_float32(image: np.ndarray) -> tuple[np.ndarray, float]:
    """``(image, scale)``: float data beyond what float32 holds (e.g. float64 values of 1e300, which
    would become infinite) divided by its 99.8th percentile magnitude (what the normalisation maps
    to 1; the largest magnitude where that is 0), outliers then clipped to float32's safe range, so
    that every later float32 step stays finite and one wild pixel cannot flatten the rest; other
    images unchanged with scale 1. Intensities are only compared relatively (percentile
    normalisation), so segmentation is unchanged by the scale."""
    img = np.asarray(image)
    if not np.issubdtype(img.dtype, np.floating) or img.dtype.itemsize <= 4 or img.size == 0:
        return img, 1.0
    magnitude = np.abs(img)
    top = float(np.max(magnitude))
    if top == 0.0 or _FLOAT32_SAFE[0] <= top <= _FLOAT32_SAFE[1]:
        return img, 1.0
    step = max(1, int(np.sqrt(img.size / 262144)))  # a 512 x 512 sample, as the normalisation takes
    scale = float(np.percentile(magnitude.ravel()[::step], 99.8)) or top
    return np.clip(img / scale, -_FLOAT32_SAFE[1], _FLOAT32_SAFE[1]), scale
