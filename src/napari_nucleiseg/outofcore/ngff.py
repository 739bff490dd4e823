"""OME-NGFF (OME-Zarr) metadata of an input: the array and axes of a pyramid level, and its pixel size,
with every field's type checked (a malformed one is one ``ImageReadError`` line)."""

from __future__ import annotations

from pathlib import Path

from ..errors import ImageReadError


def multiscale_level(path: Path, attrs: dict, level: int) -> tuple[str | None, str | None]:
    """The array path and axis letters of ``level`` in OME-NGFF ``multiscales`` metadata
    (None, None without it; ImageReadError for malformed metadata or a missing level)."""
    ms, dataset = _multiscale_dataset(path, attrs, level)
    if ms is None:
        return None, None
    names = _axis_names(path, ms)
    return dataset["path"], "".join(n[0].lower() for n in names) if names else None


def _multiscale_dataset(path: Path, attrs: dict, level: int) -> tuple[dict | None, dict | None]:
    """The first multiscale image of OME-NGFF metadata (0.4 ``multiscales``, or 0.5 ``ome``) and
    its dataset of ``level``, their types checked; (None, None) without that metadata."""
    ome = attrs.get("ome", {})
    multiscales = attrs.get("multiscales") or (ome.get("multiscales") if isinstance(ome, dict) else None)
    if not multiscales:
        return None, None
    if not isinstance(multiscales, list) or not isinstance(multiscales[0], dict):
        raise ImageReadError(path, f"malformed OME-Zarr metadata: 'multiscales' must be a list of objects, "
                             f"not {_shown(multiscales)}")
    ms = multiscales[0]
    datasets = ms.get("datasets", [])
    if not isinstance(datasets, list) or not all(isinstance(d, dict) for d in datasets):
        raise ImageReadError(path, "malformed OME-Zarr metadata: 'datasets' must be a list of objects, "
                             f"not {_shown(datasets)}")
    if not 0 <= level < len(datasets):
        raise ImageReadError(path, f"has {len(datasets)} pyramid level(s), level {level} asked for")
    key = datasets[level].get("path")
    if not isinstance(key, str) or not key:
        problem = "has no 'path'" if key is None else f"has 'path' {_shown(key)}, not the name of an array"
        raise ImageReadError(path, f"malformed OME-Zarr metadata: dataset {level} {problem}")
    return ms, datasets[level]


def _axis_names(path: Path, ms: dict) -> list[str] | None:
    """The axis names of a multiscale image (objects with a ``name``, or plain names), checked."""
    axes = ms.get("axes")
    if not axes:
        return None
    names = [a.get("name") if isinstance(a, dict) else a for a in axes] if isinstance(axes, list) else None
    if names is None or not all(isinstance(n, str) and n for n in names):
        raise ImageReadError(path, "malformed OME-Zarr metadata: 'axes' must be a list of named axes, "
                             f"not {_shown(axes)}")
    return names


def _shown(value, limit: int = 60) -> str:
    """``value`` as a message quotes it: its repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def zarr_pixel_size(path, level: int = 0) -> tuple[float, float] | None:
    """Pixel size ``(Y, X)`` in micrometres of ``level`` of an OME-Zarr image: the ``scale`` of its
    dataset's ``coordinateTransformations`` (times the multiscale's own, when it has one), in the
    axes' units (y and x without a unit: no size, as an uncalibrated TIFF has none).

    Parameters
    ----------
    path : str or Path
        A zarr / OME-Zarr folder.
    level : int
        Pyramid level (0: full resolution).

    Returns
    -------
    tuple of float or None
        None for a store without OME-Zarr metadata, or whose scale is missing, not numbers, in a
        unit not in ``io.pixel_size.UNITS_UM`` or implausible: as for TIFF metadata, a pixel size
        is a bonus, and ``open_source`` reports malformed metadata.
    """
    from ..io.pixel_size import micrometres

    try:
        import zarr

        attrs = dict(zarr.open(str(path), mode="r").attrs)
        ms, dataset = _multiscale_dataset(Path(path), attrs, int(level))
        names = _axis_names(Path(path), ms) if ms is not None else None
        scale = _scale(dataset) if ms is not None else None
    except Exception:  # noqa: BLE001 - never fail a read because of its metadata
        return None
    if not scale or len(scale) < 2:
        return None
    overall = _scale(ms) or [1.0] * len(scale)  # applied after the dataset's
    letters = [n[0].lower() for n in names] if names else ["q"] * (len(scale) - 2) + ["y", "x"]
    if len(letters) != len(scale) or len(overall) != len(scale) or not {"y", "x"} <= set(letters):
        return None
    units = [a.get("unit") if isinstance(a, dict) else None for a in ms["axes"]] if names else [None] * len(scale)
    y, x = letters.index("y"), letters.index("x")
    if units[y] is None or units[x] is None:  # OME-NGFF 0.4 asks every level for a scale: 1.0 without a unit
        return None                          # is the writer's placeholder, not a calibration
    size = (micrometres(scale[y] * overall[y], units[y]), micrometres(scale[x] * overall[x], units[x]))
    return None if None in size else size


def _scale(transformed: dict) -> list[float] | None:
    """The ``scale`` of the ``coordinateTransformations`` of a dataset or multiscale image (None
    without one, or where it is not a list of numbers)."""
    transforms = transformed.get("coordinateTransformations")
    for t in transforms if isinstance(transforms, list) else []:
        if isinstance(t, dict) and t.get("type") == "scale":
            scale = t.get("scale")
            ok = isinstance(scale, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 for v in scale)
            return [float(v) for v in scale] if ok else None
    return None
