"""Whole-image statistics gathered in one pass over the blocks, so that every block is prepared
for the network exactly as ``preprocess.prepare_channels`` prepares the whole image: the same
image kind (fluorescence / bright-field / stained), inversion and percentile normalisation.

The in-memory path takes these statistics on strided overviews (every ``shape // 256``-th and
``shape // 512``-th pixel); here the same pixels are picked out of each block as it passes, so the
statistics are the same numbers, and memory stays that of one block and the overviews.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np

from ..errors import Cancelled
from ..inference.checks import check_float_region
from ..inference.denoise import WINDOW, measured_smoothing, noise_window
from ..inference.illumination import Illumination
from ..inference.kinds import colour_stats, kind_from, looks_brightfield, overview_illumination
from ..inference.overview import channel_min, subsample_steps
from ..inference.preprocess import (
    PERCENTILES,
    evened_tops,
    haematoxylin,
    normalize,
    normalize_bounds,
    nucleus_signal,
)
from ..inference.sizing import shrink
from .blocks import BlockGrid

#: side of the regions the statistics pass reads at a time
SCAN_BLOCK = 2048


@dataclass(frozen=True)
class ImageStats:
    """What a block needs to know of the whole image to be prepared as the whole would be.

    Attributes
    ----------
    kind : str
        ``kinds.image_kind`` of the whole image.
    top : float
        Brightest value of the nucleus channel (inverted images are ``top - channel``).
    bounds : (float, float, float, float)
        Offset, scale and outlier limits of the nucleus signal's normalisation (``normalize_bounds``;
        a plan of an older version has the first two).
    rgb_top : float or None
        Brightest value of a colour image (haematoxylin density).
    haem_bounds : tuple of float or None
        Normalisation of the haematoxylin plane (stained images, two-channel models).
    stain_signal : str
        The nucleus signal of a stained image (``preprocess.nucleus_signal``): the one the model
        that segments it was trained on.
    smoothing : float
        Gaussian sigma every window's network input is smoothed with, after rescaling
        (``inference.denoise``; 0: none).
    light : Illumination
        Uneven light of a bright-field image, evened out in every block (``inference.illumination``).
    """

    kind: str
    top: float
    bounds: tuple[float, ...]
    rgb_top: float | None = None
    haem_bounds: tuple[float, ...] | None = None
    stain_signal: str = "darkest"
    smoothing: float = 0.0
    light: Illumination = Illumination()

    @property
    def invert(self) -> bool:
        return self.kind != "fluorescence"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ImageStats:
        hb = d.get("haem_bounds")
        return cls(d["kind"], float(d["top"]), tuple(d["bounds"]), d.get("rgb_top"), tuple(hb) if hb else None,
                   d.get("stain_signal", "darkest"), float(d.get("smoothing", 0.0)),
                   Illumination.from_dict(d.get("light")))


class _Overview:
    """The pixels ``image[::sy, ::sx]`` collected block by block."""

    def __init__(self, shape, size: int, dtype):
        self.sy, self.sx = subsample_steps(shape, size)
        out = (-(-shape[0] // self.sy), -(-shape[1] // self.sx), *shape[2:])
        self.pixels = np.zeros(out, dtype)

    def add(self, region: np.ndarray, y0: int, x0: int) -> None:
        oy, ox = (-y0) % self.sy, (-x0) % self.sx
        part = region[oy::self.sy, ox::self.sx]
        ty, tx = (y0 + oy) // self.sy, (x0 + ox) // self.sx
        self.pixels[ty:ty + part.shape[0], tx:tx + part.shape[1]] = part


def gather_stats(source, invert: bool | None = None, cancel: Callable[[], bool] | None = None,
                 stain_signal_for: Callable[[str], str] | None = None,
                 percentiles: tuple[float, float] = PERCENTILES, even_light: bool = True,
                 ) -> tuple[ImageStats, np.ndarray, tuple[int, int]]:
    """One pass over ``source`` (an ``ImageSource``): its kind and normalisation.

    Parameters
    ----------
    source : ImageSource
    invert : bool or None
        Dark nuclei on a bright background; None detects it (``kinds.looks_brightfield``).
    cancel : callable, optional
        Checked between regions; ``errors.Cancelled`` is raised.
    stain_signal_for : callable, optional
        ``kind -> stain signal`` of the model that will segment an image of that kind
        (``ModelEntry.stain_signal``); default: the darkest channel.
    percentiles : (float, float)
        Of the normalisation (``ModelEntry.percentiles``).
    even_light : bool
        Even out the light of a bright-field image lit unevenly (``inference.illumination``).

    Returns
    -------
    stats : ImageStats
    overview : numpy.ndarray
        The normalised nucleus signal of every ``steps``-th pixel (to find blocks with nuclei).
    steps : (int, int)
    """
    colour = len(source.shape) == 3
    o256, o512 = _Overview(source.shape, 256, source.dtype), _Overview(source.shape, 512, source.dtype)
    dark_top, bright_top, red_top = -np.inf, -np.inf, -np.inf
    for blk in BlockGrid(source.shape[:2], SCAN_BLOCK, 0):
        if cancel is not None and cancel():
            raise Cancelled()
        y0, y1, x0, x1 = blk.core
        region = source.read(slice(y0, y1), slice(x0, x1))
        check_float_region(region, source.name)
        o256.add(region, y0, x0)
        o512.add(region, y0, x0)
        if colour:
            rgb = region[..., :3].astype(np.float32)
            dark_top = max(dark_top, float(channel_min(rgb).max()))
            bright_top = max(bright_top, float(rgb.max()))
            red_top = max(red_top, float(rgb[..., 0].max()))
        else:
            dark_top = max(dark_top, float(region.astype(np.float32).max()))
    if invert is None:
        invert = looks_brightfield(o256.pixels)
    measured = overview_illumination(o256.pixels, (o256.sy, o256.sx)) if invert else Illumination()
    rows, cols = np.arange(0, source.shape[0], o512.sy), np.arange(0, source.shape[1], o512.sx)
    kind = kind_from(bool(invert), *(colour_stats(o512.pixels, bright_top, measured.field(rows, cols))
                                     if colour else (None, 0.0)))
    signal_kind = stain_signal_for(kind) if kind == "stained" and stain_signal_for else "darkest"
    top = (red_top if signal_kind == "red" else dark_top) if kind != "fluorescence" else 0.0
    light = measured if even_light else Illumination()
    field = light.field(rows, cols)
    if field is not None:  # as preprocess.prepare_channels evens it out: tops from the same overview
        top, evened_top = evened_tops(o512.pixels, field, signal_kind)
        bright_top = evened_top if colour else bright_top
    signal = nucleus_signal(o512.pixels, kind != "fluorescence", signal_kind, top=top, light=field)
    haem = None
    if kind == "stained":
        haem = _floats(normalize_bounds(haematoxylin(o512.pixels, top=bright_top, light=field), *percentiles,
                                        subsampled=True))
    stats = ImageStats(kind, top, _floats(normalize_bounds(signal, *percentiles, subsampled=True)),
                       bright_top if colour else None, haem, signal_kind, light=light)
    return stats, normalize(signal, bounds=stats.bounds), (o512.sy, o512.sx)


def _floats(values) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def prepare_block(region: np.ndarray, stats: ImageStats, channels: int = 1,
                  origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Model input for a block whose first pixel is the image's ``origin``, as
    ``preprocess.prepare_channels`` makes it for the whole image.

    Returns float32 ``(h, w)`` (one channel) or ``(2, h, w)``.
    """
    field = stats.light.field(np.arange(origin[0], origin[0] + region.shape[0]),
                              np.arange(origin[1], origin[1] + region.shape[1])) if stats.invert else None
    first = normalize(nucleus_signal(region, stats.invert, stats.stain_signal, top=stats.top, light=field),
                      bounds=stats.bounds)
    if channels == 1:
        return first
    if stats.haem_bounds is not None:
        second = normalize(haematoxylin(region, top=stats.rgb_top, light=field), bounds=stats.haem_bounds)
    else:
        second = first
    return np.stack([first, second]).astype(np.float32)


def measure_smoothing(source, stats: ImageStats, zoom: float = 1.0) -> ImageStats:
    """``stats`` with the ``smoothing`` that ``segment()`` chooses for a pass at ``zoom``: from the
    noise of the prepared input, rescaled by ``zoom``, in its centred window (``denoise.measured_smoothing``;
    the block workers smooth each window's input with it after rescaling)."""
    rows, cols = noise_window(source.shape[:2], math.ceil(WINDOW / zoom))
    x = prepare_block(source.read(rows, cols), stats, origin=(rows.start, cols.start))
    return replace(stats, smoothing=measured_smoothing(shrink(x, zoom) if zoom != 1.0 else x)[1])
