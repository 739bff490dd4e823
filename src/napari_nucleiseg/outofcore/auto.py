"""When to go out of core, and the out-of-core route of the entry points that take files (the
command line, the batch engine)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import NucleisegError
from ..io.images import tiff_header
from .ngff import zarr_pixel_size
from .source import TIFF_SUFFIXES

#: pixels above which ``nucleiseg segment`` and the batch engine segment out of core (6000 x 6000:
#: about 2 GB in memory, at ~56 bytes per pixel); ``$NUCLEISEG_OUT_OF_CORE_PIXELS`` changes it
OUT_OF_CORE_PIXELS = 36_000_000
#: a result folder ``<stem>_outofcore`` next to the in-memory outputs ``<stem>_labels.tif``...
FOLDER_SUFFIX = "_outofcore"


def threshold() -> int:
    """``OUT_OF_CORE_PIXELS``, or the number in ``$NUCLEISEG_OUT_OF_CORE_PIXELS``."""
    value = os.environ.get("NUCLEISEG_OUT_OF_CORE_PIXELS")
    try:
        return int(float(value)) if value else OUT_OF_CORE_PIXELS
    except ValueError:
        raise NucleisegError(f"NUCLEISEG_OUT_OF_CORE_PIXELS must be a number of pixels, not {value!r}") from None


def needs_out_of_core(path) -> bool:
    """True for a zarr folder, or a TIFF whose first image has more than ``threshold()`` pixels
    per plane (read from its header only). Anything unreadable is left to the in-memory reader
    (and its message)."""
    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".zarr":
        return True
    if not path.name.lower().endswith(TIFF_SUFFIXES):
        return False
    try:
        shape, _, axes = tiff_header(path)
    except Exception:
        return False
    plane = int(np.prod([n for a, n in zip(axes, shape) if a in "YX"]))
    return plane > threshold()


def result_folder(out_stem) -> Path:
    """The out-of-core result folder of an output stem (``out/name`` -> ``out/name_outofcore``)."""
    return Path(f"{out_stem}{FOLDER_SUFFIX}")


def segment_file(path, out_stem, options, probability: bool = True, uncertainty: bool = True,
                 cancel=None, overwrite: bool = False, **run):
    """``segment_out_of_core`` of a file into ``result_folder(out_stem)``.

    Returns ``(result, summary)``: the ``OutOfCoreResult`` and a dict of ``nuclei``,
    ``mean_area`` and ``mean_confidence`` (from the table, read in chunks). The pixel size of the
    segmented level (``file_pixel_size``) is the result's scale unless ``run`` gives one.
    """
    from .run import segment_out_of_core

    if "scale" not in run:
        run["scale"] = file_pixel_size(path, int(run.get("level", 0)))

    result = segment_out_of_core(path, result_folder(out_stem), options, probability=probability,
                                 uncertainty=uncertainty, cancel=cancel, overwrite=overwrite, **run)
    return result, table_summary(result.table_path)


def file_pixel_size(path, level: int = 0) -> tuple[float, float] | None:
    """Pixel size ``(Y, X)`` in micrometres of pyramid ``level`` of an image file.

    Parameters
    ----------
    path : str or Path
        A TIFF (OME or ImageJ metadata, ``io.pixel_size``) or a zarr / OME-Zarr folder (its
        ``coordinateTransformations``, ``ngff.zarr_pixel_size``).
    level : int
        Pyramid level (0: full resolution).

    Returns
    -------
    tuple of float or None
        None where the file names no usable size.
    """
    from ..io.pixel_size import pixel_size, plane_size

    path = Path(path)
    if path.is_dir() or path.suffix.lower() == ".zarr":
        return zarr_pixel_size(path, level)
    return _level_size(path, level, plane_size(pixel_size(path)))


def _level_size(path, level: int, size: tuple[float, float] | None) -> tuple[float, float] | None:
    """The pixel size ``(Y, X)`` of a TIFF pyramid's ``level``: the full-resolution ``size`` times the
    level's downsampling (``size`` itself for level 0, or where the file has no such level)."""
    if size is None or level == 0:
        return size
    import tifffile

    from ..io.images import quiet_tifffile

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, full, this = series.axes, series.levels[0].shape, series.levels[level].shape
    except (IndexError, OSError, ValueError):
        return size  # open_source says what is wrong with the file or the level
    y, x = axes.index("Y"), axes.index("X")
    return size[0] * full[y] / this[y], size[1] * full[x] / this[x]


def table_summary(table_path) -> dict:
    """``nuclei``, ``mean_area`` and ``mean_confidence`` (NaN with no nucleus) of a result's nuclei
    table, read in chunks."""
    import pandas as pd

    n, area, confidence = 0, 0.0, 0.0
    for chunk in pd.read_csv(table_path, usecols=["area", "confidence"], chunksize=200_000):
        n += len(chunk)
        area += float(chunk["area"].sum())
        confidence += float(chunk["confidence"].sum())
    return {"nuclei": n, "mean_area": area / n if n else np.nan, "mean_confidence": confidence / n if n else np.nan}
