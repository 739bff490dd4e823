"""Overlay pictures: nucleus outlines drawn over the image, for reports and batch output."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries

from ..inference.preprocess import normalize, to_grey


def overlay_png(image: np.ndarray, labels: np.ndarray, color=(255, 220, 0)) -> np.ndarray:
    """uint8 RGB picture of ``image`` with each nucleus outlined in ``color``.

    An 8-bit colour image is kept as it is; other colour images are stretched with one range
    for all channels, so the colour balance (e.g. a lavender H&E background) is kept.
    """
    if image.ndim == 3 and image.shape[-1] in (3, 4):
        rgb = image[..., :3].astype(np.float32)
        rgb = rgb / 255.0 if image.dtype == np.uint8 else normalize(rgb, 0.5, 99.5)
    else:
        g = normalize(to_grey(image), 0.5, 99.5)
        rgb = np.stack([g, g, g], -1)
    out = (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    out[find_boundaries(labels, mode="inner")] = color
    return out
