"""The unit of work: one block read with its halo, segmented as ``segment()`` would, its nuclei
kept if their centre lies in its core, its maps and done marker written.

``BlockJob`` holds everything a worker needs and pickles, so a block runs the same in this
process, a thread, a process pool or on a Dask worker (the network is loaded once per process).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from skimage.segmentation import relabel_sequential

from ..inference.denoise import smooth
from ..inference.measure import measure
from ..inference.postprocess import instances
from ..inference.predict import predict_maps, tile_layout, uncertainty_map
from ..inference.preprocess import to_grey
from ..inference.sizing import resize_maps, shrink
from .blocks import Block, BlockGrid, overlap
from .source import ImageSource
from .stats import ImageStats, prepare_block
from .store import MAPS, ResultFolder, open_level, save_block


@dataclass(frozen=True)
class BlockJob:
    """What every block of a run shares.

    Attributes
    ----------
    source : ImageSource
    grid : BlockGrid
    stats : ImageStats
        Whole-image kind and normalisation.
    weights : str
        Name of the zoo model whose network runs (the specialist for this kind of image).
    device : str or None
    tta : bool
    tile, overlap : int
        Tiling of the network inside a block's window.
    post : dict
        Post-processing (``postprocess.instances_from_maps``).
    zoom : float
        Scale the image is predicted at (chosen once for the whole image).
    out : str
        The result folder.
    maps : tuple of str
        Maps written besides the labels (``"probability"``, ``"uncertainty"``).
    scale : (float, float) or None
        Pixel size, for ``area_physical``.
    """

    source: ImageSource
    grid: BlockGrid
    stats: ImageStats
    weights: str
    device: str | None
    tta: bool
    tile: int
    overlap: int
    post: dict
    zoom: float
    out: str
    maps: tuple[str, ...] = ("probability", "uncertainty")
    scale: tuple[float, float] | None = None


def segment_window(job: BlockJob, block: Block, zoom: float | None = None, cancel=None):
    """The window of ``block``: its pixels, maps (foreground, border[, distance]), labels and
    uncertainty, at ``zoom`` (default: the job's); ``cancel`` is checked between network tiles."""
    from .. import zoo

    y0, y1, x0, x1 = block.window
    region = job.source.read(slice(y0, y1), slice(x0, x1))
    net, entry, dev = zoo.load_model(job.weights, job.device)
    x = prepare_block(region, job.stats, entry.input_channels(), origin=(y0, x0))
    zoom = job.zoom if zoom is None else zoom
    small = smooth(shrink(x, zoom) if zoom < 1.0 else x, job.stats.smoothing)
    # the tile size of the full window: every full window runs in tiles of one shape (each new
    # input shape costs the CPU backend set-up time); only windows at the image's edges differ
    tile = window_tile(math.ceil((job.grid.block + 2 * job.grid.halo) * zoom), job.tile, job.overlap)
    maps = predict_maps(net, small, dev, tile=tile, overlap=job.overlap, tta=job.tta, cancel=cancel)
    if zoom < 1.0:
        maps = resize_maps(maps, x.shape[-2:])
    labels = instances(maps, job.post)
    return region, maps, labels, uncertainty_map(maps["foreground"], maps["variance"])


def window_tile(side: int, tile: int, overlap: int) -> int:
    """The network tile for a window of ``side`` pixels: ``tile``, or the even tile size of
    ``predict.tile_layout`` when the window is larger. A window just over a tile (a 1024-pixel
    block with its halo) is then 2 x 2 tiles of ~600 pixels, not 2 x 2 mostly overlapping tiles
    of 1024."""
    return tile if side <= tile else tile_layout(side, tile, overlap)[0]


def centred_in_core(labels: np.ndarray, block: Block) -> np.ndarray:
    """``labels`` (of ``block``'s window) with only the nuclei whose centroid lies in the core,
    renumbered 1..n in their order."""
    n = int(labels.max())
    if n == 0:
        return labels
    yy, xx = np.indices(labels.shape, sparse=True)
    flat = labels.ravel()
    counts = np.bincount(flat, minlength=n + 1).astype(np.float64)
    counts[counts == 0] = np.nan
    cy = np.bincount(flat, weights=np.broadcast_to(yy, labels.shape).ravel(), minlength=n + 1) / counts
    cx = np.bincount(flat, weights=np.broadcast_to(xx, labels.shape).ravel(), minlength=n + 1) / counts
    ys, xs = block.core_in_window()
    inside = (cy >= ys.start) & (cy < ys.stop) & (cx >= xs.start) & (cx < xs.stop)
    inside[0] = False
    kept = np.where(inside[labels], labels, 0)
    return relabel_sequential(kept.astype(np.int32))[0]


def process_block(job: BlockJob, block: Block, window: tuple | None = None, cancel=None) -> int:
    """Segment ``block``, write its part of the maps and its done marker; returns its nuclei.

    The marker (``store.ResultFolder.block_file``) holds the block's labels cut into the pieces
    that fall into each neighbouring core (``stitch.join_chunk`` puts them together) and its rows
    of the nuclei table; it is written last, atomically, so a block is done or not at all.
    ``window``: the block's ``segment_window`` result when it is known already (a sample block of
    the plan).
    """
    region, maps, labels, unc = window if window is not None else segment_window(job, block, cancel=cancel)
    kept = centred_in_core(labels, block)
    folder = ResultFolder(job.out)
    ys, xs = block.core_in_window()
    y0, y1, x0, x1 = block.core
    for name in job.maps:
        values = maps["foreground"] if name == "probability" else unc
        open_level(folder, MAPS[name])[y0:y1, x0:x1] = values[ys, xs]
    table = measure(kept, to_grey(region), maps["foreground"], unc, scale=job.scale)
    table["centroid_y"] += block.window[0]
    table["centroid_x"] += block.window[2]
    arrays = {f"table.{c}": table[c].to_numpy() for c in table.columns}
    arrays["nuclei"] = np.array(int(kept.max()))
    for target in job.grid.neighbourhood(block):
        where = overlap(block, target)
        if where is not None and kept[where[0]].any():
            arrays[f"piece.{target.key}"] = kept[where[0]]
    save_block(folder, block.key, arrays)
    return int(kept.max())


def run_block(job: BlockJob, iy: int, ix: int, cancel=None) -> tuple[str, int]:
    """``process_block`` by grid position (what executors submit): ``(key, nuclei)``."""
    block = job.grid.at(iy, ix)
    return block.key, process_block(job, block, cancel=cancel)
