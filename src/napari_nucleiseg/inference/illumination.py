"""Uneven light in bright-field images: measured, and evened out before the network sees it.

A bright-field image lit unevenly (vignetting, a tilted lamp, a misaligned condenser) has a
background that darkens towards a side or the corners. Inverted for the network, that dark
background looks like nuclei, and a dark enough side makes the whole image look like
fluorescence. The background of a bright-field image is its brightest part, so the light that
fell on it is the upper envelope of the brightest channel: the ``PERCENTILE`` (nearest rank) of each of
``GRID`` x ``GRID`` blocks of a 256-pixel overview, fitted in log space by a quadratic surface (a
tilt and a vignette); blocks far below the surface hold tissue rather than background and are
down-weighted.

The *ratio* of the fitted light's darkest point to its brightest is at least 0.70 on every
bright-field and stained image we have (DSB, MoNuSeg, DeepLIIF, scikit-image's IHC sample; dense
tissue lowers it a little). The image is divided by the light raised to a *strength* that rises
from 0 at a ratio of ``EVEN_BELOW`` to 1 at ``FULL_BELOW``, so none of those images changes
(``docs/robustness.md``). Fluorescence images are never evened out: their brightest parts are
nuclei, not the light.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Blocks per side of the overview whose upper envelope is fitted.
GRID = 8
#: Percentile of each block taken as its background brightness.
PERCENTILE = 90.0
#: Ratio (darkest / brightest light) below which the image starts to be evened out.
EVEN_BELOW = 0.65
#: Ratio at and below which it is evened out fully.
FULL_BELOW = 0.45
# blocks more than this many robust SDs below the surface are tissue, not background
_DARK_BLOCK = 2.0
_TISSUE_WEIGHT = 0.1
_ITERATIONS = 5
_SURFACE_POINTS = 65


@dataclass(frozen=True)
class Illumination:
    """The light over an image: ``log light = poly(v, u)``, a quadratic in the overview's
    coordinates ``v = (row / steps[0] + 0.5) / shape[0] - 0.5`` (``u`` alike for columns), with
    its maximum over the image at 0.

    Attributes
    ----------
    coef : tuple of float
        ``1, v, u, v**2, u**2, v*u`` coefficients.
    ratio : float
        Darkest over brightest light in the image (1.0: even).
    shape : (int, int)
        Shape of the overview it was measured on.
    steps : (int, int)
        Pixels of the image per overview pixel (``overview.subsample_steps``).
    """

    coef: tuple[float, ...] = (0.0,) * 6
    ratio: float = 1.0
    shape: tuple[int, int] = (1, 1)
    steps: tuple[int, int] = (1, 1)

    @property
    def strength(self) -> float:
        """Power of the light the image is divided by: 0 (left alone) to 1 (evened out fully)."""
        return float(np.clip((EVEN_BELOW - self.ratio) / (EVEN_BELOW - FULL_BELOW), 0.0, 1.0))

    def field(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray | None:
        """``light ** strength`` (float32, in (0, 1]) at the image's pixels ``rows x cols`` (index
        arrays: a window, ``np.arange(y0, y1)``, or an overview's, ``np.arange(0, h, sy)``); None
        when the image is left alone."""
        if self.strength == 0.0:
            return None
        c = np.float32(self.strength) * np.asarray(self.coef, np.float32)
        v = ((np.asarray(rows, np.float32) / self.steps[0] + 0.5) / self.shape[0] - 0.5)[:, None]
        u = ((np.asarray(cols, np.float32) / self.steps[1] + 0.5) / self.shape[1] - 0.5)[None, :]
        out = (c[0] + c[1] * v + c[3] * v * v) + (c[2] * u + c[4] * u * u) + c[5] * v * u
        return np.exp(out, out=out)

    def field_of(self, shape: tuple[int, ...]) -> np.ndarray | None:
        """``field`` over a whole image of ``shape`` (``(Y, X, ...)``)."""
        return self.field(np.arange(shape[0]), np.arange(shape[1]))

    def to_dict(self) -> dict:
        return {"coef": list(self.coef), "ratio": self.ratio, "shape": list(self.shape), "steps": list(self.steps)}

    @classmethod
    def from_dict(cls, d: dict | None) -> Illumination:
        if not d:
            return cls()
        return cls(tuple(float(c) for c in d["coef"]), float(d["ratio"]), tuple(d["shape"]), tuple(d["steps"]))


def _terms(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.stack([np.ones_like(v), v, u, v * v, u * u, v * u], -1)


def measure_illumination(bright: np.ndarray, steps: tuple[int, int] = (1, 1)) -> Illumination:
    """The light over an image, from its brightest channel's overview ``bright`` (``(h, w)``,
    every ``steps``-th pixel of the image).

    Returns an even ``Illumination`` (ratio 1) for an overview too small for the blocks, or whose
    blocks are all dark.
    """
    b = np.asarray(bright, np.float32)
    h, w = b.shape
    even = Illumination(shape=(max(h, 1), max(w, 1)), steps=tuple(int(s) for s in steps))
    if h < GRID or w < GRID:
        return even
    bh, bw = h // GRID, w // GRID  # the last rows and columns beyond whole blocks are left out
    blocks = b[:bh * GRID, :bw * GRID].reshape(GRID, bh, GRID, bw).transpose(0, 2, 1, 3).reshape(GRID, GRID, -1)
    k = round(PERCENTILE / 100.0 * (blocks.shape[-1] - 1))  # the percentile's nearest rank: one partition
    level = np.partition(blocks, k, axis=-1)[..., k].astype(np.float64)
    if not level.max() > 0:  # no light to measure (a black or all-negative overview)
        return even
    centres = np.arange(GRID) + 0.5
    v = (centres * bh / h - 0.5)[:, None].repeat(GRID, 1).ravel()
    u = (centres * bw / w - 0.5)[None, :].repeat(GRID, 0).ravel()
    a = _terms(v, u)
    y = np.log(np.maximum(level.ravel(), 1e-3 * level.max()))
    weights = np.ones_like(y)
    for _ in range(_ITERATIONS):
        coef = np.linalg.lstsq(a * weights[:, None], y * weights, rcond=None)[0]
        resid = y - a @ coef
        sd = max(float(np.median(np.abs(resid))) / 0.6745, 1e-3)
        weights = np.where(resid < -_DARK_BLOCK * sd, _TISSUE_WEIGHT, 1.0)
    # the surface's extremes over the image, on pixel centres of a grid that takes in its edges
    rows, cols = (np.unique(np.linspace(0, n - 1, _SURFACE_POINTS).round()) for n in (h, w))
    vv, uu = np.meshgrid((rows + 0.5) / h - 0.5, (cols + 0.5) / w - 0.5, indexing="ij")
    surface = _terms(vv, uu) @ coef
    coef[0] -= surface.max()
    ratio = float(np.exp(surface.min() - surface.max()))
    if not (np.isfinite(ratio) and np.all(np.isfinite(coef))):
        return even
    return Illumination(tuple(float(c) for c in coef), ratio, (h, w), tuple(int(s) for s in steps))
