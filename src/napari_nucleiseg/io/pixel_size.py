"""Pixel size of an image file (OME or ImageJ TIFF metadata), read for layers and results alike."""

from __future__ import annotations

from pathlib import Path


def pixel_size(path) -> tuple[float, ...] | None:
    """Pixel size ``(Z, Y, X)`` or ``(Y, X)`` from a TIFF's OME or ImageJ metadata.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    tuple of float or None
        None for other formats, and when the file names no (positive) size: metadata is a
        bonus, so a file whose metadata cannot be parsed is read without it.
    """
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return None
    import tifffile

    from .images import quiet_tifffile

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            if tif.is_ome and tif.ome_metadata:
                return _ome_size(tif.ome_metadata)
            if tif.is_imagej:
                return _imagej_size(tif)
    except Exception:  # noqa: BLE001 - never fail a read because of its metadata
        return None
    return None


def _ome_size(xml: str) -> tuple[float, ...] | None:
    import xml.etree.ElementTree as ET

    for el in ET.fromstring(xml).iter():
        if el.tag.endswith("Pixels"):
            y, x, z = (el.get(f"PhysicalSize{a}") for a in "YXZ")
            if not (x and y) or float(x) <= 0 or float(y) <= 0:
                return None
            return (float(z), float(y), float(x)) if z and float(z) > 0 else (float(y), float(x))
    return None


def _imagej_size(tif) -> tuple[float, ...] | None:
    page = tif.pages[0]
    xr, yr = page.tags.get("XResolution"), page.tags.get("YResolution")
    if xr is None or yr is None:
        return None
    sx = xr.value[1] / xr.value[0] if xr.value[0] else 0.0
    sy = yr.value[1] / yr.value[0] if yr.value[0] else 0.0
    if sx <= 0 or sy <= 0 or (sx == 1 and sy == 1):
        return None
    z = (tif.imagej_metadata or {}).get("spacing")
    return (float(z), sy, sx) if z and float(z) > 0 else (sy, sx)


def plane_size(size: tuple[float, ...] | None) -> tuple[float, float] | None:
    """The ``(Y, X)`` part of a pixel size, as ``segment_any(scale=)`` takes it."""
    return None if size is None else (float(size[-2]), float(size[-1]))


def ome_options(size: tuple[float, ...] | None, ndim: int) -> dict:
    """``tifffile.imwrite`` keywords that store ``size`` (micrometres, as OME assumes) with a
    ``(Y, X)`` or ``(Z, Y, X)`` array: OME metadata, and the resolution tags other readers use."""
    if size is None or ndim not in (2, 3):
        return {}
    y, x = size[-2:]
    meta = {"axes": "YX" if ndim == 2 else "ZYX", "PhysicalSizeX": float(x), "PhysicalSizeY": float(y)}
    if ndim == 3 and len(size) == 3:
        meta["PhysicalSizeZ"] = float(size[0])
    return {"ome": True, "metadata": meta, "resolution": (1e4 / x, 1e4 / y), "resolutionunit": "CENTIMETER"}
