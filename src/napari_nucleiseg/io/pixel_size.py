"""Pixel size of an image file (OME or ImageJ TIFF metadata), read for layers and results alike."""

from __future__ import annotations

import math
from pathlib import Path

#: Micrometres per unit, for the units OME and ImageJ name (ImageJ's default, no unit, is taken as µm).
UNITS_UM = {"µm": 1.0, "μm": 1.0, "um": 1.0, "\\u00b5m": 1.0, "micron": 1.0, "microns": 1.0, "micrometer": 1.0,
            "micrometre": 1.0, "nm": 1e-3, "nanometer": 1e-3, "pm": 1e-6, "å": 1e-4, "angstrom": 1e-4,
            "mm": 1e3, "cm": 1e4, "m": 1e6, "inch": 25400.0, "in": 25400.0}
#: Pixel sizes outside this range (µm) are not a microscope's: the metadata is ignored.
PLAUSIBLE_UM = (1e-6, 1e6)


def pixel_size(path) -> tuple[float, ...] | None:
    """Pixel size ``(Z, Y, X)`` or ``(Y, X)`` from a TIFF's OME or ImageJ metadata.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    tuple of float or None
        Micrometres (other units converted). None for other formats, and when the file names no
        size, a size that is not a finite number in ``PLAUSIBLE_UM``, or a unit not in
        ``UNITS_UM``: metadata is a bonus, so a file whose metadata cannot be parsed is read without it.
    """
    path = Path(path)
    if path.suffix.lower() not in (".tif", ".tiff") or not path.is_file():
        return None
    import tifffile

    from .images import quiet_tifffile

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            if tif.is_ome and tif.ome_metadata:
                size = _ome_size(tif.ome_metadata)
            elif tif.is_imagej:
                size = _imagej_size(tif)
            else:
                return None
            if size is not None and len(size) == 3 and not set(tif.series[0].axes.upper()) & set("ZIQ"):
                size = size[1:]  # a Z spacing of an image without planes (a time-lapse) is no axis' size
            return size
    except Exception:  # noqa: BLE001 - never fail a read because of its metadata
        return None


def micrometres(value, unit) -> float | None:
    """``value`` in ``unit`` (None: µm) as micrometres; None when either is unusable."""
    try:
        um = float(value) * UNITS_UM[str(unit or "µm").strip().lower()]
    except (KeyError, TypeError, ValueError):
        return None
    return um if math.isfinite(um) and PLAUSIBLE_UM[0] <= um <= PLAUSIBLE_UM[1] else None


def _size(y, x, z=None) -> tuple[float, ...] | None:
    """``(Z, Y, X)`` or ``(Y, X)`` of micrometres (None entries: unusable; Z is optional)."""
    if y is None or x is None:
        return None
    return (z, y, x) if z is not None else (y, x)


def _ome_size(xml: str) -> tuple[float, ...] | None:
    import xml.etree.ElementTree as ET

    for el in ET.fromstring(xml).iter():
        if el.tag.endswith("Pixels"):
            y, x, z = (micrometres(el.get(f"PhysicalSize{a}"), el.get(f"PhysicalSize{a}Unit")) for a in "YXZ")
            return _size(y, x, z)
    return None


#: TIFF ResolutionUnit values ImageJ honours when its description names no unit (1, none: µm).
_RESOLUTION_UNITS = {2: "inch", 3: "cm"}


def _imagej_size(tif) -> tuple[float, ...] | None:
    page = tif.pages[0]
    xr, yr = page.tags.get("XResolution"), page.tags.get("YResolution")
    if xr is None or yr is None or not (xr.value[0] and yr.value[0]):
        return None
    sx, sy = xr.value[1] / xr.value[0], yr.value[1] / yr.value[0]
    if sx == 1 and sy == 1:  # no calibration
        return None
    meta = tif.imagej_metadata or {}
    unit = meta.get("unit") or _RESOLUTION_UNITS.get(int(getattr(page.tags.get("ResolutionUnit"), "value", 1)))
    z = meta.get("spacing")
    return _size(micrometres(sy, unit), micrometres(sx, unit), micrometres(z, unit) if z else None)


def plane_size(size: tuple[float, ...] | None) -> tuple[float, float] | None:
    """The ``(Y, X)`` part of a pixel size, as ``segment_any(scale=)`` takes it."""
    return None if size is None else (float(size[-2]), float(size[-1]))


def ome_options(size: tuple[float, ...] | None, ndim: int) -> dict:
    """``tifffile.imwrite`` keywords that store ``size`` (micrometres, as OME assumes) with a
    ``(Y, X)`` or ``(Z, Y, X)`` array: OME metadata, and the resolution tags other readers use."""
    if size is None or ndim not in (2, 3) or not all(_positive(v) for v in size[-2:]):
        return {}
    y, x = (abs(float(v)) for v in size[-2:])  # a flipped layer's negative scale is still its size
    meta = {"axes": "YX" if ndim == 2 else "ZYX", "PhysicalSizeX": float(x), "PhysicalSizeY": float(y)}
    if ndim == 3 and len(size) == 3 and _positive(size[0]):
        meta["PhysicalSizeZ"] = abs(float(size[0]))
    return {"ome": True, "metadata": meta, "resolution": (1e4 / x, 1e4 / y), "resolutionunit": "CENTIMETER"}


def _positive(v) -> bool:
    """A usable size, whatever its sign: finite and not zero."""
    try:
        return math.isfinite(float(v)) and float(v) != 0
    except (TypeError, ValueError):
        return False
