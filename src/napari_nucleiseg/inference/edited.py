"""A nuclei table brought in line with labels the user has edited since it was measured."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .shape import shape_table

#: the columns a table's rows get again from the edited labels alone; the others (intensity,
#: probability, confidence) need the image and the model's maps, and are left empty
SHAPE_COLUMNS = ("area", "centroid_y", "centroid_x", "perimeter", "eccentricity", "solidity")


def _shapes(labels: np.ndarray, ids: np.ndarray | None = None) -> pd.DataFrame:
    """``shape_table`` of 2D labels, or of each plane of a stack (with a ``plane`` column); only of the
    nuclei ``ids`` when given (measured in their bounding box, so a few edited nuclei cost little)."""
    if labels.ndim == 3:
        planes = [_shapes(plane, ids).assign(plane=z) for z, plane in enumerate(labels)]
        return pd.concat(planes, ignore_index=True) if planes else shape_table(np.zeros((1, 1), np.int64))
    if ids is None:
        return shape_table(labels)
    mask = np.isin(labels, ids)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return shape_table(np.zeros((1, 1), np.int64))
    box = np.s_[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    table = shape_table(np.where(mask[box], labels[box], 0))
    return table.assign(centroid_y=table["centroid_y"] + rows[0], centroid_x=table["centroid_x"] + cols[0])


def remeasured(labels: np.ndarray, table: pd.DataFrame, pixel_area: float | None = None,
               ids=None) -> pd.DataFrame:
    """``table`` as the edited ``labels`` now are.

    Rows of nuclei the user erased or merged away are dropped. A nucleus that was painted on (its
    pixel count changed) or is new gets its shape again (``SHAPE_COLUMNS``, ``area_physical`` from
    ``pixel_area``) and empty values where the image or the model's maps would be needed, and
    ``edited`` True. Untouched nuclei keep their rows. A table that matches its labels, or that this
    plugin did not measure (``ours``: another tool's area may be in µm², its labels repeat per
    frame), is returned unchanged.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels, ``(Y, X)`` or a stack ``(Z, Y, X)`` whose labels are unique across planes.
    table : pandas.DataFrame
        The per-nucleus table measured before the edits (a ``label`` and an ``area`` column).
    pixel_area : float, optional
        Physical area of one pixel, for the ``area_physical`` of edited nuclei.
    ids : array-like of int, optional
        The only labels that may have changed (those a paint stroke touched); the other rows are
        kept as they are without measuring anything. Default: every label is checked.

    Returns
    -------
    pandas.DataFrame
    """
    labels = np.asarray(labels)
    if not ours(table, labels):
        return table
    if ids is not None:
        ids = np.unique(np.asarray(ids, np.int64))
        ids = ids[ids > 0]
    now = _shapes(labels, ids)
    pixels = now.groupby("label")["area"].sum()  # a nucleus painted into a second plane: all its pixels
    if "plane" in now.columns:  # ... and one row, where it is largest
        now = now.sort_values("area", ascending=False).drop_duplicates("label").sort_values("label")
    old = table.set_index(table["label"].astype(np.int64))
    now = now.set_index(now["label"].astype(np.int64))
    checked = old.index if ids is None else old.index[old.index.isin(ids)]
    kept = checked[checked.isin(now.index)]
    same = kept[pixels.loc[kept].to_numpy() == old.loc[kept, "area"].to_numpy()]
    if len(same) == len(checked) == len(now):
        return table
    same = old.index.difference(checked).union(same)
    edited = now.drop(index=same, errors="ignore")
    rows = pd.DataFrame(index=edited.index, columns=old.columns, dtype=float)
    for column in ("label", *SHAPE_COLUMNS, *(("plane",) if "plane" in old.columns else ())):
        if column in old.columns and column in edited.columns:
            rows[column] = edited[column]
    if "area_physical" in old.columns and pixel_area is not None:
        rows["area_physical"] = edited["area"] * float(pixel_area)
    untouched = old.loc[same].assign(edited=old.loc[same, "edited"].astype(bool) if "edited" in old.columns else False)
    out = pd.concat([untouched, rows.assign(edited=True)]).sort_index()
    for column in out.columns.drop("edited"):  # as measured (float32 stays float32, as written before)
        dtype = table[column].dtype
        if pd.api.types.is_integer_dtype(dtype):
            out[column] = out[column].astype(dtype if out[column].notna().all() else "Int64")
        elif pd.api.types.is_float_dtype(dtype):
            out[column] = out[column].astype(dtype)
    return out.reset_index(drop=True)


def ours(table: pd.DataFrame, labels: np.ndarray) -> bool:
    """A table this plugin measured for ``labels``: every column of ``measure.COLUMNS`` (``area`` in
    pixels), one row per label, a ``plane`` column only for a stack. Tables of other tools are left
    as they are."""
    from .measure import COLUMNS

    if not len(table) or labels.ndim not in (2, 3) or not set(COLUMNS) <= set(table.columns):
        return False
    ids = pd.to_numeric(table["label"], errors="coerce")
    return bool(ids.notna().all() and ids.is_unique and ("plane" in table.columns) == (labels.ndim == 3))
