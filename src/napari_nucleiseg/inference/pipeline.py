"""``segment()``: the one function every entry point (widgets, CLI, batch, benchmarks) calls."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from .measure import measure
from .predict import predict_maps, uncertainty_map
from .preprocess import check_image, image_kind, prepare, to_grey
from .sizing import parse_diameter, sized_prediction


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
    model: str = "default",
    tta: bool = False,
    device: str | None = None,
    threshold: float | None = None,
    border_threshold: float | None = None,
    min_size: int | None = None,
    min_mean_foreground: float | None = None,
    invert: bool | None = None,
    diameter: float | str | None = "auto",
    tile: int = 1024,
    overlap: int = 64,
    scale: tuple[float, float] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Segmentation:
    """Find every nucleus in a 2D image.

    Parameters
    ----------
    image : numpy.ndarray
        ``(Y, X)`` grey or ``(Y, X, 3|4)`` RGB(A), any numeric dtype.
    model : str
        Zoo model name; ``"default"`` is the shipped default. A model whose card names
        specialists for an image kind (e.g. stained tissue) hands such images to them
        (``ModelEntry.for_kind``); the post-processing stays the named model's.
    tta : bool
        Average the 8 flips/rotations (slower, a little more accurate, better uncertainty).
    device : str, optional
        ``"cpu"``, ``"cuda"``, ``"mps"``; None or ``"auto"`` picks the GPU when there is one.
    threshold, border_threshold, min_size, min_mean_foreground : optional
        Post-processing (``postprocess.instances_from_maps``); None uses the values tuned for
        the model (its card).
    invert : bool, optional
        True for dark nuclei on a bright background; None detects it.
    diameter : float, "auto" or None
        Typical nucleus diameter in pixels. Nuclei larger than the size the model was
        trained on (its card's ``sizing.target_diameter``) are segmented on a shrunken copy
        of the image, with outputs at full size (``sizing``). ``"auto"`` measures it on a
        first pass; None (or 0, ``"off"``) never rescales. Anything else raises ValueError.
    tile, overlap : int
        Tiling for large images (memory stays bounded by the tile).
    scale : (float, float), optional
        Pixel size, used for ``area_physical`` in the table.
    progress : callable, optional
        ``progress(done, total)`` per tile.
    cancel : callable, optional
        Returns True to stop; ``predict.Cancelled`` is then raised.

    Returns
    -------
    Segmentation
    """
    from .. import zoo
    from ..device import describe

    check_image(image)
    diameter = parse_diameter(diameter)
    entry = zoo.get_entry(model)
    kind = image_kind(image, invert)
    net, used, dev = zoo.load_model(entry.for_kind(kind), device)
    post = entry.postprocess()
    for key, val in (("threshold", threshold), ("border_threshold", border_threshold), ("min_size", min_size),
                     ("min_mean_foreground", min_mean_foreground)):
        if val is not None:
            post[key] = val
    x = prepare(image, invert=kind != "fluorescence")
    earlier = {"tiles": 0, "last": 0}  # a second (shrunk) pass continues the count of the first

    def tiles(done, total):
        earlier["last"] = total
        if progress is not None:
            progress(earlier["tiles"] + done, earlier["tiles"] + total)

    def predict(im):
        out = predict_maps(net, im, dev, tile=tile, overlap=overlap, tta=tta, progress=tiles, cancel=cancel)
        earlier["tiles"] += earlier["last"]
        return out

    maps, labels, zoom = sized_prediction(predict, x, post, entry.target_diameter(), diameter)
    unc = uncertainty_map(maps["foreground"], maps["variance"])
    table = measure(labels, to_grey(image), maps["foreground"], unc, scale=scale)
    settings = {"model": entry.name, "weights": used.name, "image_kind": kind, "tta": tta, "invert": invert,
                "tile": tile, "overlap": overlap, "diameter": diameter, "zoom": round(zoom, 4), **post}
    return Segmentation(labels, maps["foreground"], unc, table, maps["border"], used.name,
                        describe(dev), settings)


def is_stack(image: np.ndarray) -> bool:
    """True for ``(Z, Y, X)`` or ``(Z, Y, X, C)`` data.

    A 3D array is a stack unless its last axis holds colour (3 or 4) or two channels
    (``(Y, X, 2)``, which ``segment`` refuses with a message).
    """
    return image.ndim == 4 or (image.ndim == 3 and image.shape[-1] not in (2, 3, 4))


def combine_planes(results: list[Segmentation]) -> Segmentation:
    """Stack per-plane results into one ``(Z, Y, X)`` Segmentation; the table gains a ``plane`` column.

    Labels stay unique across planes (plane ``z`` labels are offset by the nuclei of earlier planes).
    """
    offset, labels, tables = 0, [], []
    for z, r in enumerate(results):
        lab = np.where(r.labels > 0, r.labels + offset, 0).astype(np.int32)
        t = r.table.copy()
        t.insert(0, "plane", z)
        t["label"] = t["label"] + offset
        offset += int(r.labels.max())
        labels.append(lab)
        tables.append(t)
    first = results[0]
    return Segmentation(
        np.stack(labels), np.stack([r.probability for r in results]),
        np.stack([r.uncertainty for r in results]), pd.concat(tables, ignore_index=True),
        np.stack([r.border for r in results]), first.model, first.device,
        {**first.settings, "per_plane": True, "zoom": [r.settings.get("zoom") for r in results]},
    )


def segment_stack(stack: np.ndarray, progress: Callable[[int, int], None] | None = None,
                  cancel: Callable[[], bool] | None = None, **kwargs) -> list[Segmentation]:
    """Segment each plane of a ``(Z, Y, X)`` or ``(Z, Y, X, C)`` stack; ``progress`` counts planes.

    Use ``combine_planes`` on the result for one stacked ``Segmentation``.
    """
    from ..errors import Cancelled

    out = []
    for i, plane in enumerate(stack):
        if cancel is not None and cancel():
            raise Cancelled()
        out.append(segment(plane, cancel=cancel, **kwargs))
        if progress is not None:
            progress(i + 1, len(stack))
    return out
