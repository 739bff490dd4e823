"""npe2 reader: TIFF / OME-TIFF (pixel size, stacks, channels) and DSB 2018 sample folders.

The manifest offers it for ``*.tif``/``*.tiff`` and folders only: what it reads better than
napari's own reader (pixel sizes as the layer scale, two-channel files and files of five or more
channels as one layer per channel, labels this plugin wrote as Labels with their nuclei table, a DSB
folder as image + ground truth). PNG and JPEG are left to napari; asked directly, it reads them too.
``get_reader`` reads the file(s) straight away so that a file it cannot decode gets no
reader (napari then tries other plugins) instead of an error later on.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import NucleisegError
from ..io.images import is_dsb_folder, is_image_file, read_dsb_folder, read_image, tiff_header
from ..io.pixel_size import pixel_size
from .features import label_features


def _image_layer(path: Path) -> tuple:
    """One ``(data, kwargs, "image")`` tuple for an image file (with ``channel_axis``, which napari
    splits into a layer per channel, for two channels or a TIFF channel axis of five or more)."""
    tiff = path.suffix.lower() in (".tif", ".tiff")
    try:
        shape, _, axes = tiff_header(path) if tiff else ((), None, "")
    except Exception:  # noqa: BLE001 - a broken file: read_image below says what is wrong with it
        shape, axes = (), ""
    many = any(a == "C" and n > 4 for a, n in zip(axes, shape))
    data = read_image(path, channels=many)
    kwargs: dict = {"name": path.stem}
    rgb = data.ndim >= 3 and data.shape[-1] in (3, 4)
    kwargs["rgb"] = bool(rgb)
    two = data.ndim >= 3 and data.shape[-1] == 2  # two channels: one layer each, of a stack too
    split = many or (two and (data.ndim == 3 or any(a in "CS" and n == 2 for a, n in zip(axes, shape))))
    spatial_ndim = data.ndim - (1 if rgb or split else 0)
    if tiff:
        size = pixel_size(path)
        if size is not None:
            size = size[-spatial_ndim:]
            kwargs["scale"] = (1.0,) * (spatial_ndim - len(size)) + tuple(size)
    if split:  # one layer per channel: pick the nuclei
        kwargs.update(channel_axis=-1, name=[f"{path.stem} [channel {c}]" for c in range(data.shape[-1])])
        kwargs.pop("rgb")
    table = _nuclei_table(path) if tiff and not (rgb or split) and np.issubdtype(data.dtype, np.integer) else None
    if table is not None and _same_labels(data, table):  # labels this plugin wrote: Labels again, measured
        kwargs.pop("rgb")
        if data.ndim == 2:
            kwargs["features"] = label_features(table)
        return data, kwargs, "labels"
    return data, kwargs, "image"


def _same_labels(data: np.ndarray, table) -> bool:
    """True when the table's ``label`` column names exactly the labels of ``data`` (so an image that
    merely has a CSV of the same name stays an image)."""
    ids = np.unique(data)
    return set(table["label"].tolist()) == set(ids[ids > 0].tolist())


def _nuclei_table(path: Path):
    """The nuclei table written beside labels ``path`` (``<name>.csv`` by the Labels writer,
    ``<stem>_nuclei.csv`` beside ``<stem>_labels.tif`` by ``nucleiseg``), None when there is none."""
    import pandas as pd

    from .writer import table_path

    candidates = [table_path(path)]
    if path.stem.endswith("_labels"):
        candidates.append(path.with_name(path.stem.removesuffix("_labels") + "_nuclei.csv"))
    for csv in candidates:
        if csv.is_file():
            try:
                table = pd.read_csv(csv)
            except (OSError, ValueError):
                continue
            if "label" in table.columns:
                return table
    return None


def _dsb_layers(path: Path) -> list[tuple]:
    """Image layer plus a ``<id> ground truth`` Labels layer (when the folder has masks)."""
    image, labels = read_dsb_folder(path)
    name = path.name
    rgb = image.ndim == 3 and image.shape[-1] in (3, 4)
    layers = [(image, {"name": name, "rgb": bool(rgb)}, "image")]
    if labels is not None:
        layers.append((labels, {"name": f"{name} ground truth", "opacity": 0.5}, "labels"))
    return layers


def _layers_for(path: Path) -> list[tuple]:
    return _dsb_layers(path) if path.is_dir() else [_image_layer(path)]


def _return_layers(layers: list[tuple], path=None) -> list[tuple]:
    """The reader function napari calls: hands back the layers read by ``get_reader``."""
    return layers


def get_reader(path):
    """Return a reader function for ``path``, or None when this plugin cannot read it.

    Parameters
    ----------
    path : str or list of str
        A TIFF/OME-TIFF, PNG or JPEG file, a DSB sample folder (``<id>/images/<id>.png``
        with optional ``masks/``), or a list of those.

    Returns
    -------
    callable or None
        ``reader(path) -> list of (data, kwargs, layer_type)``; None for anything that is
        not one of the formats above or cannot be decoded.
    """
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths:
        return None
    layers: list[tuple] = []
    for p in map(Path, paths):
        if not (is_image_file(p) or is_dsb_folder(p)):
            return None
        try:
            layers.extend(_layers_for(p))
        except (NucleisegError, OSError, ValueError):
            return None
    return functools.partial(_return_layers, layers)
