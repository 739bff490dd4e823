"""``segment()``: the one function every entry point (widgets, CLI, batch, benchmarks) calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..memory import check_fits
from ..options import SegmentOptions, parse_diameter
from .measure import measure
from .predict import predict_maps, uncertainty_map
from .preprocess import check_image, image_kind, to_grey, within_float32
from .sizing import sized_prediction


@dataclass
class Segmentation:
    """Result of ``segment``.

    Attributes
    ----------
    labels : numpy.ndarray
        int32 ``(Y, X)`` instance labels, 0 = background.
    probability : numpy.ndarray
        float32 ``(Y, X)`` nucleus foreground probability.
    uncertainty : numpy.ndarray
        float32 ``(Y, X)`` per-pixel uncertainty in [0, 1].
    table : pandas.DataFrame
        One row per nucleus (label, area, centroid, mean intensity, confidence, ...).
    border : numpy.ndarray
        float32 ``(Y, X)`` nucleus-border probability.
    model : str
        Name of the zoo model whose weights ran (the requested one, or its specialist for
        this kind of image).
    device : str
        Where it ran, e.g. ``"CPU (2 threads, bf16)"``.
    settings : dict
        Every option that produced this result (for reproducibility).
    """

    labels: np.ndarray
    probability: np.ndarray
    uncertainty: np.ndarray
    table: pd.DataFrame
    border: np.ndarray
    model: str
    device: str
    settings: dict = field(default_factory=dict)

    @property
    def zoom(self) -> float:
        """Scale the image was segmented at (the smallest over a stack's planes); < 1 when its
        nuclei were larger than the model's training size (``sizing``)."""
        return float(np.min(self.settings.get("zoom", 1.0)))


def segment(
    image: np.ndarray,
    options: SegmentOptions | None = None,
    *,
    scale: tuple[float, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    **changes,
) -> Segmentation:
    """Find every nucleus in a 2D image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)`` grey or ``(Y, X, 3|4)`` RGB(A), any numeric dtype.
    options : SegmentOptions, optional
        Model, device, post-processing, nucleus size and tiling (``options.SegmentOptions``;
        defaults: the shipped default model, sizes measured). A model whose card names
        specialists for an image kind (e.g. stained tissue) hands such images to them
        (``ModelEntry.for_kind``); the post-processing stays the named model's.
    scale : (float, float), optional
        Pixel size, used for ``area_physical`` in the table.
    progress : callable, optional
        ``progress(done, total)`` per tile.
    cancel : callable, optional
        Returns True to stop; ``errors.Cancelled`` is then raised.
    **changes
        Any field of ``SegmentOptions`` (``model="unet16"``, ``tta=True``, ``diameter=30``...),
        applied over ``options``.

    Returns
    -------
    Segmentation

    Raises
    ------
    errors.OptionError
        For an option out of range (checked before any work).
    errors.InvalidImageError
        For an image that cannot be segmented (``check_image``), or that cannot fit in memory
        (``errors.ImageTooLargeError``). Float images beyond float32's range are rescaled first
        (``preprocess.within_float32``; ``settings["intensity_scale"]`` then says by how much).
    """
    from .. import zoo
    from ..device import describe

    opts = SegmentOptions.build(options, **changes)
    check_image(image)
    check_fits(np.shape(image), np.asarray(image).dtype, loaded=True)
    image, intensity_scale = within_float32(image)
    diameter = parse_diameter(opts.diameter)
    entry = zoo.get_entry(opts.model)
    kind = image_kind(image, opts.invert)
    net, used, dev = zoo.load_model(entry.for_kind(kind), opts.device)
    post = opts.postprocess(entry.postprocess())
    x = used.prepare(image, kind)
    predict = _tile_counter(net, dev, opts, progress, cancel)
    maps, labels, zoom = sized_prediction(predict, x, post, entry.target_diameter(), diameter)
    unc = uncertainty_map(maps["foreground"], maps["variance"])
    table = measure(labels, to_grey(image), maps["foreground"], unc, scale=scale)
    settings = {"model": entry.name, "weights": used.name, "image_kind": kind, "tta": opts.tta,
                "invert": opts.invert, "tile": opts.tile, "overlap": opts.overlap, "diameter": diameter,
                "zoom": round(zoom, 4), **post}
    if intensity_scale != 1.0:
        settings["intensity_scale"] = intensity_scale  # the table's intensities are divided by it
    return Segmentation(labels, maps["foreground"], unc, table, maps["border"], used.name,
                        describe(dev), settings)


def _tile_counter(net, dev, opts: SegmentOptions, progress, cancel) -> Callable[[np.ndarray], dict]:
    """``predict(image) -> maps`` whose tile progress runs on across passes (a second, shrunk
    pass continues the count of the first)."""
    earlier = {"tiles": 0, "last": 0}

    def tiles(done, total):
        earlier["last"] = total
        if progress is not None:
            progress(earlier["tiles"] + done, earlier["tiles"] + total)

    def predict(im):
        out = predict_maps(net, im, dev, tile=opts.tile, overlap=opts.overlap, tta=opts.tta,
                           progress=tiles, cancel=cancel)
        earlier["tiles"] += earlier["last"]
        return out

    return predict
