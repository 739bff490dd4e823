"""npe2 writer: a Labels layer -> ``<name>.tif`` (uint16/uint32) with its features table as ``<name>.csv``.

napari's own writers save labels without their measurements; this one keeps the
per-nucleus table (the layer's ``features``) beside the image, as ``nucleiseg segment`` does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import OutputWriteError
from ..inference.edited import remeasured
from ..io.results import label_dtype
from ..io.writers import csv_writer, tiff_writer, write_set
from .features import pixel_area, table_path


def _pixel_size(scale, ndim: int) -> tuple[float, ...] | None:
    """The layer's scale as the TIFF's pixel size (None for unit pixels; a flipped axis' negative size
    and unusable ones are ``pixel_size.ome_options``' to handle)."""
    if scale is None or len(scale) < ndim or ndim not in (2, 3):
        return None
    size = tuple(float(v) for v in scale[-ndim:])  # ome_options drops sizes that are not numbers above 0
    return None if all(abs(v) == 1.0 for v in size[-2:]) else size


def write_labels(path: str, data, attributes: dict) -> list[str]:
    """Write one Labels layer (napari's single-layer writer signature).

    Parameters
    ----------
    path : str
        Where the TIFF goes (``.tif`` or ``.tiff``; another suffix gets ``.tif``).
    data : array-like
        The layer's integer labels (2D, or a 3D stack).
    attributes : dict
        The layer's attributes; ``features`` (one row per label) is written to :func:`table_path`
        without napari's ``index`` column when it has rows, as the labels now are: rows of erased
        nuclei dropped, painted or new ones measured again (``inference.edited.remeasured``);
        ``scale`` becomes the TIFF's pixel size (OME metadata, as the plugin's reader reads it back).

    Returns
    -------
    list of str
        The files written.
    """
    out = Path(path)
    if out.suffix.lower() not in (".tif", ".tiff"):
        out = out.with_name(out.name + ".tif")
    labels = np.asarray(data[0] if attributes.get("multiscale") else data)
    if labels.size and labels.min() < 0:
        raise ValueError(f"cannot write '{out.name}': the labels have negative values")
    dtype = label_dtype(labels) if labels.size else np.uint16
    size = _pixel_size(attributes.get("scale"), labels.ndim)
    if dtype == np.uint64 and size is not None:  # OME metadata, which carries the pixel size, has no 64-bit ids
        raise ValueError(f"cannot write '{out.name}' with its pixel size: label ids above 4294967295; renumber "
                         "them first (skimage.segmentation.relabel_sequential)")
    files = [(out, tiff_writer(labels.astype(dtype), pixel_size=size, labels=True))]
    features = attributes.get("features")
    if isinstance(features, pd.DataFrame) and len(features):
        table = remeasured(labels, features.drop(columns=["index"], errors="ignore"),
                           pixel_area(attributes.get("scale")))
        files.append((table_path(out), csv_writer(table)))
    try:
        written = [str(p) for p in write_set(files)]
        if len(files) == 1 and _is_our_table(table_path(out)):
            table_path(out).unlink()  # an earlier layer's table would be read back with these labels
    except OSError as exc:
        raise OutputWriteError(out.parent, exc) from None
    return written


def _is_our_table(path: Path) -> bool:
    """A CSV this plugin wrote: its header holds every column of the nuclei table (``measure.COLUMNS``),
    so a table of the user's own (a scikit-image ``regionprops_table`` export) is never taken for one."""
    from ..inference.measure import COLUMNS

    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            header = [c.strip() for c in fh.readline().split(",")]
    except OSError:
        return False
    return set(COLUMNS) <= set(header)
