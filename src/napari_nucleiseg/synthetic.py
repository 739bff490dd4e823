"""Seeded synthetic microscopy: fluorescence-like nuclei (separate or touching) with ground truth.

Used for the shipped sample data, napari's Open Sample menu and the tests; nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def _ellipse_radius2(shape, cy, cx, ry, rx, angle):
    """Squared normalised radius: < 1 inside the ellipse, 0 at its centre."""
    yy, xx = np.ogrid[: shape[0], : shape[1]]
    y, x = yy - cy, xx - cx
    c, s = np.cos(angle), np.sin(angle)
    u, v = (x * c + y * s) / rx, (-x * s + y * c) / ry
    return u * u + v * v


def synthetic_nuclei(shape=(256, 256), n_nuclei: int = 30, radius=(7, 12), touching: float = 0.3,
                     noise: float = 0.04, brightfield: bool = False, seed: int = 0):
    """A fluorescence-like field of nuclei and its instance labels.

    Parameters
    ----------
    shape : (int, int)
    n_nuclei : int
        Number of nuclei to place (fewer if the field is full).
    radius : (float, float)
        Range of nucleus radii in pixels.
    touching : float
        Fraction of nuclei placed against a previous one (touching pairs to split).
    noise : float
        Gaussian noise level relative to nucleus brightness.
    brightfield : bool
        Dark nuclei on a bright background (as in bright-field / H&E).
    seed : int

    Returns
    -------
    image : numpy.ndarray
        uint16 ``(Y, X)``.
    labels : numpy.ndarray
        int32 ``(Y, X)`` ground truth, 0 = background.
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    labels = np.zeros(shape, np.int32)
    signal = np.zeros(shape, np.float32)
    centres = []
    placed, tries = 0, 0
    while placed < n_nuclei and tries < n_nuclei * 50:
        tries += 1
        ry = rng.uniform(*radius)
        rx = ry * rng.uniform(0.7, 1.0)
        angle = rng.uniform(0, np.pi)
        if centres and rng.random() < touching:
            py, px, pr = centres[rng.integers(len(centres))]
            a = rng.uniform(0, 2 * np.pi)
            d = (pr + ry) * 0.85
            cy, cx = py + d * np.sin(a), px + d * np.cos(a)
        else:
            cy, cx = rng.uniform(ry, h - ry), rng.uniform(rx, w - rx)
        r2 = _ellipse_radius2(shape, cy, cx, ry, rx, angle)
        m = r2 <= 1.0
        if not m.any() or (labels[m] > 0).mean() > 0.15:
            continue
        m &= labels == 0
        placed += 1
        labels[m] = placed
        centres.append((cy, cx, ry))
        texture = ndi.gaussian_filter(rng.normal(0, 1, shape).astype(np.float32), 2) * 0.6
        # dome profile: dimmer towards the edge, so touching nuclei meet in a valley as real ones do
        signal[m] = rng.uniform(0.5, 1.0) * (1 + texture[m]) * (1.0 - 0.45 * r2[m])
    img = ndi.gaussian_filter(signal, 1.2)
    yy, xx = np.mgrid[:h, :w] / max(h, w)
    img += 0.08 + 0.05 * (yy + xx)  # uneven illumination
    img += rng.normal(0, noise, shape).astype(np.float32)
    if brightfield:
        img = 1.2 - img
    return (np.clip(img, 0, None) * 20000).astype(np.uint16), labels


def mosaic_tiles(n_distinct: int = 16, tile: int = 256, seed: int = 0, **kwargs) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_distinct`` seeded fields of ``tile`` pixels (``synthetic_nuclei``, ~60 nuclei each by
    default) to build large mosaics from (``mosaic_tile``)."""
    kw = {"n_nuclei": max(1, tile * tile // 1100), "radius": (6, 10), "touching": 0.4, **kwargs}
    return [synthetic_nuclei((tile, tile), seed=seed + k, **kw) for k in range(n_distinct)]


def mosaic_tile(tiles: list, iy: int, ix: int) -> tuple[np.ndarray, np.ndarray]:
    """Tile ``(iy, ix)`` of a mosaic of ``tiles`` (one of them, turned by a multiple of 90°): a
    field of any size is made tile by tile, in bounded memory."""
    image, labels = tiles[(iy * 7 + ix * 3) % len(tiles)]
    k = (iy + 2 * ix) % 4
    return np.rot90(image, k), np.rot90(labels, k)


def synthetic_mosaic(shape=(2000, 2000), tile: int = 256, n_distinct: int = 16, seed: int = 0):
    """A large field of nuclei and its labels, in memory (``mosaic_tile`` for the tiles).

    Returns ``(image uint16, labels int32)`` of ``shape``; labels are unique over the mosaic.
    """
    tiles = mosaic_tiles(n_distinct, tile, seed)
    rows, cols = -(-shape[0] // tile), -(-shape[1] // tile)
    image = np.zeros((rows * tile, cols * tile), np.uint16)
    labels = np.zeros(image.shape, np.int32)
    offset = 0
    for iy in range(rows):
        for ix in range(cols):
            img, lab = mosaic_tile(tiles, iy, ix)
            box = np.s_[iy * tile:(iy + 1) * tile, ix * tile:(ix + 1) * tile]
            image[box] = img
            labels[box] = np.where(lab > 0, lab + offset, 0)
            offset += int(lab.max())
    return image[:shape[0], :shape[1]], labels[:shape[0], :shape[1]]
