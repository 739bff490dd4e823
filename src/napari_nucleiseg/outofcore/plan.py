"""The plan of a run, decided once for the whole image before any block runs: its statistics
(kind, normalisation), the network for that kind, the scale to predict at and the halo.

The scale follows ``inference.sizing``: a given diameter, or with ``diameter="auto"`` the median
nucleus diameter measured on a few sample blocks (the ones with most nucleus signal, segmented
at full scale), so that every block is predicted at the same zoom. As ``segment()`` does, the
regions around those blocks are first looked at coarsely (``sizing.coarse_view``): nuclei many
times the training size, whose texture a full-scale block would take for nuclei, are measured there
(``sizing.trusted_look``, ``sizing.saw_texture``).
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from ..inference.denoise import smoothed
from ..inference.postprocess import instances
from ..inference.predict import predict_maps
from ..inference.sizing import (
    AUTO,
    COARSE,
    COARSE_MIN_SIDE,
    coarse_view,
    parse_diameter,
    pooled_diameter,
    pooled_look,
    saw_texture,
    texture_look,
    trusted_look,
    zoom_for,
)
from .blocks import BlockGrid
from .stats import ImageStats, gather_stats, measure_smoothing, prepare_block

#: blocks segmented to measure the nucleus size with ``diameter="auto"``
SAMPLE_BLOCKS = 4
#: side of the regions around the sample blocks that the coarse look reads
LOOK_SIDE = COARSE * COARSE_MIN_SIDE
#: context the network needs around a pixel to predict it as in a whole image (pixels at its scale)
NETWORK_MARGIN = 64
#: ... of a bright-field image, whose lit background carries further: measured on a 1000x1000 field,
#: the largest foreground difference from the whole image inside a block's core was 0.93 with 64
#: pixels, 0.17 with 128 and 0.04 with 160 (fluorescence: 0.20 with 64).
BRIGHTFIELD_MARGIN = 160


def needed_halo(diameter: float | None, zoom: float, kind: str = "fluorescence") -> int:
    """The halo an image needs: more than two nuclei and the network's margin for its kind, at the zoom."""
    margin = BRIGHTFIELD_MARGIN if kind == "brightfield" else NETWORK_MARGIN
    return int(math.ceil(max(margin / zoom, 2.0 * (diameter or 0.0))))


def auto_halo(diameter: float | None, zoom: float, block: int, kind: str = "fluorescence") -> int:
    """``needed_halo``, at most a block."""
    return min(int(block), needed_halo(diameter, zoom, kind))


def sample_blocks(grid: BlockGrid, overview: np.ndarray, steps: tuple[int, int], k: int = SAMPLE_BLOCKS):
    """The ``k`` blocks with the most bright (nucleus-like) pixels in ``overview``."""
    sy, sx = steps
    scores = []
    for blk in grid:
        y0, y1, x0, x1 = blk.core
        cell = overview[y0 // sy:-(-y1 // sy), x0 // sx:-(-x1 // sx)]
        scores.append((-float((cell > 0.5).mean()) if cell.size else 0.0, blk.iy, blk.ix))
    return [grid.at(iy, ix) for _, iy, ix in sorted(scores)[:k]]


def make_plan(source, opts, entry, block: int, halo: int | str, cancel=None) -> tuple[dict, dict]:
    """The plan (JSON-able) of segmenting ``source`` with ``opts`` and zoo ``entry``.

    Returns
    -------
    plan : dict
        ``stats`` (``ImageStats.to_dict``), ``weights`` (the network's model name), ``diameter``
        (given or measured, pixels, or None), ``zoom``, ``halo``, ``block``.
    samples : dict
        ``{block key: segment_window result}`` of the sample blocks when the plan segments them
        the same way (full scale, same halo), so they need not be segmented again; else empty.
    """
    stats, overview, steps = gather_stats(source, opts.invert, cancel=cancel,
                                          stain_signal_for=lambda kind: entry.for_kind(kind).stain_signal(),
                                          percentiles=entry.percentiles(), even_light=opts.even_light)
    if opts.denoise:
        stats = measure_smoothing(source, stats)  # for the sample blocks, at full scale
    used = entry.for_kind(stats.kind)
    post = opts.postprocess(entry.postprocess(stats.kind), entry.postprocess())  # the kind's, the user's over them
    target = entry.target_diameter()
    diameter, samples, sample_halo = parse_diameter(opts.diameter), {}, None
    if diameter == AUTO and target:
        sample_halo = auto_halo(target, 1.0, block, stats.kind) if halo == "auto" else int(halo)
        grid = BlockGrid(source.shape[:2], block, sample_halo)
        chosen = sample_blocks(grid, overview, steps)
        look = look_diameter(source, stats, used.name, opts, post, chosen, cancel) if entry.coarse_look() else None
        if trusted_look(look, target):
            diameter = look
        else:
            diameter, samples = measure_diameter(source, opts, post, used.name, stats, grid, chosen)
            diameter = look if saw_texture(diameter, texture_look(look, stats.kind), target) else diameter
    elif diameter == AUTO:
        diameter = None
    zoom = zoom_for(diameter, target)
    needed = needed_halo(diameter or target, zoom, stats.kind)
    if halo == "auto":
        halo = min(needed, int(block))
        if halo < needed:
            warnings.warn(f"block {int(block)} px is smaller than the halo this image needs ({needed} px: two "
                          "nuclei and the network's context): nuclei at block seams may be cut; use a block of "
                          f"at least {needed} px", UserWarning, stacklevel=2)
    elif int(halo) < needed:
        warnings.warn(f"halo {int(halo)} px is less than the {needed} px this image needs (two nuclei and the "
                      "network's context): nuclei at block seams may be cut, and the table may disagree with "
                      "the labels there; leave the halo automatic", UserWarning, stacklevel=2)
    if zoom != 1.0 or halo != sample_halo:
        samples = {}
    if opts.denoise and zoom != 1.0:
        stats = measure_smoothing(source, stats, zoom)
    return {"stats": stats.to_dict(), "weights": used.name, "diameter": diameter, "zoom": zoom,
            "halo": int(halo), "block": int(block),
            "postprocess": post}, samples


def look_regions(shape: tuple[int, ...], blocks, side: int = LOOK_SIDE) -> list[tuple[slice, slice]]:
    """The distinct windows of at most ``side`` x ``side`` pixels centred on ``blocks``' cores,
    moved inside an image of ``shape``."""
    regions = []
    for blk in blocks:
        y0, y1, x0, x1 = blk.core
        window = []
        for lo, hi, n in ((y0, y1, shape[0]), (x0, x1, shape[1])):
            s = min(side, n)
            start = min(max((lo + hi) // 2 - s // 2, 0), n - s)
            window.append(slice(start, start + s))
        if tuple(window) not in regions:
            regions.append(tuple(window))
    return regions


def look_diameter(source, stats: ImageStats, weights: str, opts, post: dict, blocks, cancel=None
                  ) -> float | None:
    """Median diameter of the nuclei seen on coarse views of the regions around ``blocks``
    (``look_regions``), pooled, as ``sizing.coarse_diameter`` sees a whole image; None when they
    hold fewer than ``sizing.COARSE_MIN_NUCLEI`` or the image is too small to be looked at."""
    from .. import zoo

    net, used, dev = zoo.load_model(weights, opts.device)
    looks = []
    for rows, cols in look_regions(source.shape[:2], blocks):
        x = prepare_block(source.read(rows, cols), stats, used.input_channels(), origin=(rows.start, cols.start))
        view = coarse_view(x)
        if view is not None:
            maps = predict_maps(net, smoothed(view, opts.denoise), dev, tile=opts.tile, overlap=opts.overlap,
                                cancel=cancel)
            looks.append(instances(maps, post))
    diameter = pooled_look(looks)
    return None if diameter is None else round(diameter, 3)


def measure_diameter(source, opts, post: dict, weights: str, stats: ImageStats, grid: BlockGrid, chosen
                     ) -> tuple[float | None, dict]:
    """Median nucleus diameter over the nuclei centred in the ``chosen`` sample blocks, segmented
    at full scale (None when they hold no nucleus), and the blocks' ``segment_window`` results."""
    from .worker import BlockJob, centred_in_core, segment_window

    job = BlockJob(source, grid, stats, weights, opts.device, opts.tta, opts.tile, opts.overlap,
                   post, 1.0, "", ())
    windows = {blk.key: segment_window(job, blk) for blk in chosen}
    kept = [centred_in_core(windows[blk.key][2], blk) for blk in chosen]
    kept = [k for k in kept if k.max() > 0]
    return (round(pooled_diameter(kept), 3) if kept else None), windows
