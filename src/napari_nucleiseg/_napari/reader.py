"""npe2 reader: TIFF / OME-TIFF (pixel size, stacks, channels) and DSB 2018 sample folders.

The manifest offers it for ``*.tif``/``*.tiff`` and folders only: what it reads better than
napari's own reader (pixel sizes as the layer scale, files of channels as one layer per channel (an
RGB TIFF's colour samples stay one colour layer), labels this plugin wrote as Labels with their
nuclei table, integer TIFFs named or filed as labels as Labels, a DSB folder as image + ground
truth). PNG and JPEG are left to napari; asked directly, it reads them too. ``get_reader`` reads the
file(s) straight away so that a file it cannot decode gets no reader (napari then tries other
plugins) instead of an error later on.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..errors import NucleisegError
from ..io.images import is_dsb_folder, is_image_file, many_channels, read_dsb_folder, read_image, tiff_header
from ..io.pixel_size import pixel_size
from .features import label_features, table_path


def _image_layer(path: Path) -> tuple:
    """One ``(data, kwargs, "image")`` tuple for an image file (with ``channel_axis``, which napari
    splits into a layer per channel, for two channels or any TIFF channel axis that is not an RGB
    image's colour samples)."""
    tiff = path.suffix.lower() in (".tif", ".tiff")
    try:
        shape, _, axes = tiff_header(path) if tiff else ((), None, "")
    except Exception:  # noqa: BLE001 - a broken file: read_image below says what is wrong with it
        shape, axes = (), ""
    many = many_channels(shape, axes) is not None
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
    if not tiff or rgb or split or not np.issubdtype(data.dtype, np.integer):
        return data, kwargs, "image"
    table = _nuclei_table(path)
    measured = table is not None and _same_labels(data, table)
    if measured or _marked_labels(path) or _named_labels(path):  # Labels (this plugin's again with their table)
        kwargs.pop("rgb")
        if measured and (data.ndim == 2 or table["label"].is_unique):  # a stack's labels are unique across planes
            kwargs["features"] = label_features(table)
        return data, kwargs, "labels"
    return data, kwargs, "image"


#: Name endings and folder names of label images other tools write (cellpose's ``_masks``, DSB-style
#: ``labels/`` folders, ground truth): an integer TIFF named so opens as Labels.
LABEL_NAME_ENDS = ("_labels", "_label", "_masks", "_mask", "_gt", "_ground_truth", " ground truth")
LABEL_FOLDERS = ("labels", "masks", "ground_truth", "gt")


def _named_labels(path: Path) -> bool:
    """True for a TIFF whose name or folder says it holds labels (``LABEL_NAME_ENDS``, ``LABEL_FOLDERS``)."""
    stem = path.name.lower().removesuffix(".tiff").removesuffix(".tif").removesuffix(".ome")
    return stem.endswith(LABEL_NAME_ENDS) or path.parent.name.lower() in LABEL_FOLDERS


def _marked_labels(path: Path) -> bool:
    """True for a TIFF this plugin wrote as labels (its Software tag, ``LABELS_SOFTWARE``)."""
    import tifffile

    from ..io.images import quiet_tifffile
    from ..io.writers import LABELS_SOFTWARE

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            return tif.pages[0].software == LABELS_SOFTWARE
    except Exception:  # noqa: BLE001 - a tag that cannot be read marks nothing
        return False


def _same_labels(data: np.ndarray, table) -> bool:
    """True when the table's ``label`` column names exactly the labels of ``data`` (so an image that
    merely has a CSV of the same name stays an image)."""
    ids = np.unique(data)
    return set(table["label"].tolist()) == set(ids[ids > 0].tolist())


def _nuclei_table(path: Path):
    """The nuclei table written beside labels ``path`` (``<name>.csv`` by the Labels writer,
    ``<stem>_nuclei.csv`` beside ``<stem>_labels.tif`` by ``nucleiseg``), None when there is none."""
    import pandas as pd

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
        with optional ``masks/``), or a list of image files of one shape, opened as one stack
        (napari's *Open Files as Stack*).

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
    if any(np.iscomplexobj(data) for data, _, _ in layers):
        return None  # napari cannot show complex values
    if len(paths) > 1:  # napari hands over a list only to open the files as one stack
        stacked = _stacked(layers)
        return None if stacked is None else functools.partial(_return_layers, [stacked])
    return functools.partial(_return_layers, layers)


def _stacked(layers: list[tuple]) -> tuple | None:
    """The images of ``layers`` as one stack (the first one's name and pixel size); None unless they are
    single-channel images of one shape and type (napari's own reader may stack the rest)."""
    data, kwargs, kind = layers[0]
    if any(k != "image" or "channel_axis" in kw or d.shape != data.shape or d.dtype != data.dtype
           for d, kw, k in layers):
        return None
    out = {key: kwargs[key] for key in ("name", "rgb") if key in kwargs}
    if "scale" in kwargs:
        out["scale"] = (1.0, *kwargs["scale"])
    return np.stack([d for d, _, _ in layers]), out, "image"
