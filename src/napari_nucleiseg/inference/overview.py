"""Overviews that image statistics are taken on, and the brightest and darkest channel of colour pixels."""

from __future__ import annotations

import numpy as np


def channel_max(rgb: np.ndarray) -> np.ndarray:
    """Brightest of the first three channels of ``(..., C)`` pixels, in their own dtype (numpy's
    reduction over a short last axis is several times slower than two elementwise maxima)."""
    return np.maximum(np.maximum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def channel_min(rgb: np.ndarray) -> np.ndarray:
    """Darkest of the first three channels of ``(..., C)`` pixels, in their own dtype."""
    return np.minimum(np.minimum(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def subsample_steps(shape: tuple[int, ...], size: int) -> tuple[int, int]:
    """Row and column steps of the ``size``-pixel overviews that image statistics are taken on."""
    return max(1, shape[0] // size), max(1, shape[1] // size)
