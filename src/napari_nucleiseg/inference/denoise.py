"""Light smoothing of noisy model inputs.

The networks were trained on DSB images, whose pixel noise is low (median 0.006, at most 0.033 of
the normalised range over all 584 of them, measured by ``noise_level``). A noisy image from another
lab, a dim or fast acquisition, is smoothed a little before the network sees it: a Gaussian whose
sigma grows from 0 at a noise level of ``NOISE_FROM`` to ``MAX_SIGMA`` pixels at ``NOISE_FULL``
and above. Images as clean as the training data are left exactly as they are. The rounding of an
image with few grey levels (a dim 8-bit image) counts as noise too (``quantisation_noise``). The
measurements behind these values are in ``docs/robustness.md``.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

#: Noise level (standard deviation, in units of the normalised input) below which nothing changes.
NOISE_FROM = 0.025
#: Noise level at and above which the smoothing is full.
NOISE_FULL = 0.05
#: Sigma of the full smoothing, in pixels of the network's input.
MAX_SIGMA = 1.0
#: Side of the centred window the noise level is measured on (bounds the cost on large images).
WINDOW = 512

# Immerkaer's mask [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]: its response to unit white noise has SD 6
_MASK_NORM = 6.0


def noise_window(shape: tuple[int, ...], side: int = WINDOW) -> tuple[slice, slice]:
    """The centred window of at most ``side`` x ``side`` pixels of an image of ``shape[-2:]``."""
    h, w = shape[-2:]
    y0, x0 = max(0, (h - side) // 2), max(0, (w - side) // 2)
    return slice(y0, y0 + min(h, side)), slice(x0, x0 + min(w, side))


def noise_level(plane: np.ndarray) -> float:
    """Standard deviation of the pixel noise of a 2D image, robust to its structure.

    The median absolute response to Immerkaer's mask, scaled to the SD of Gaussian noise (edges
    and nuclei are a minority of pixels and move the median little). 0 for images under 3x3.

    Parameters
    ----------
    plane : numpy.ndarray
        ``(Y, X)`` float image (a normalised network input: nuclei about 1, background about 0).

    Returns
    -------
    float
    """
    plane = np.asarray(plane, np.float32)
    if min(plane.shape) < 3:
        return 0.0
    # the mask is the outer product of [1, -2, 1] with itself: a second difference along x, then y
    dx = plane[:, :-2] - 2 * plane[:, 1:-1] + plane[:, 2:]
    residual = dx[:-2] - 2 * dx[1:-1] + dx[2:]
    return float(np.median(np.abs(residual)) / 0.6745 / _MASK_NORM)


def quantisation_noise(plane: np.ndarray) -> float:
    """Standard deviation of the rounding error of an input whose values lie on a lattice: one step
    of the lattice over sqrt(12).

    A percentile-normalised integer image's values are whole grey levels apart; a dim 8-bit image
    spans a few of them, and its flat background and staircase edges hide that error from
    ``noise_level``. Interpolated or floating-point inputs lie on no coarse lattice and give about 0.

    Parameters
    ----------
    plane : numpy.ndarray
        ``(Y, X)`` network input (every other pixel of each axis is looked at).

    Returns
    -------
    float
    """
    values = np.unique(np.asarray(plane, np.float32)[::2, ::2])
    if values.size < 2:
        return 0.0
    return float(np.min(np.diff(values)) / np.sqrt(12.0))


def smoothing_for(level: float) -> float:
    """Gaussian sigma (pixels) for an input of noise ``level``: 0 up to ``NOISE_FROM``, rising
    linearly to ``MAX_SIGMA`` at ``NOISE_FULL``."""
    ramp = (level - NOISE_FROM) / (NOISE_FULL - NOISE_FROM)
    return round(MAX_SIGMA * min(1.0, max(0.0, ramp)), 3)


def smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """``x`` (``(Y, X)`` or ``(C, Y, X)``) with each plane Gaussian-smoothed; ``x`` itself for sigma 0."""
    if sigma <= 0:
        return x
    sigmas = (0.0,) * (x.ndim - 2) + (sigma, sigma)
    return ndi.gaussian_filter(x, sigmas).astype(np.float32, copy=False)


def smoothed(x: np.ndarray, denoise: bool = True) -> np.ndarray:
    """``x`` smoothed as its own noise asks (``measured_smoothing``); ``x`` itself when ``denoise``
    is off."""
    return smooth(x, measured_smoothing(x, denoise)[1])


def measured_smoothing(x: np.ndarray, denoise: bool = True) -> tuple[float, float]:
    """``(noise level, sigma)`` of a network input ``(Y, X)`` or ``(C, Y, X)``, measured on the
    first plane's ``noise_window``: the larger of its pixel noise and its rounding error (sigma 0
    when ``denoise`` is off)."""
    plane = x if x.ndim == 2 else x[0]
    window = plane[noise_window(plane.shape)]
    level = max(noise_level(window), quantisation_noise(window))
    return round(level, 4), smoothing_for(level) if denoise else 0.0
