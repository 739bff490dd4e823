"""A nuclei table brought in line with labels the user has edited since it was measured."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .shape import shape_table

#: the columns a table's rows get again from the edited labels alone; the others (intensity,
#: probability, confidence) need the image and the model's maps, and are left empty
SHAPE_COLUMNS = ("area", "centroid_y", "centroid_x", "perimeter", "eccentricity", "solidity")


def _shapes(labels: np.ndarray) -> pd.DataFrame:
    """``shape_table`` of 2D labels, or of each plane of a stack (with a ``plane`` column)."""
    if labels.ndim == 2:
        return shape_table(labels)
    planes = [shape_table(plane).assign(plane=z) for z, plane in enumerate(labels)]
    return pd.concat(planes, ignore_index=True) if planes else shape_table(np.zeros((1, 1), np.int64))


def remeasured(labels: np.ndarray, table: pd.DataFrame, pixel_area: float | None = None) -> pd.DataFrame:
    """``table`` as the edited ``labels`` now are.

    Rows of nuclei the user erased or merged away are dropped. A nucleus that was painted on (its
    pixel count changed) or is new gets its shape again (``SHAPE_COLUMNS``, ``area_physical`` from
    ``pixel_area``) and empty values where the image or the model's maps would be needed, and
    ``edited`` True. Untouched nuclei keep their rows. A table that matches its labels, or that this
    plugin did not measure (``_ours``: another tool's area may be in µm², its labels repeat per
    frame), is returned unchanged.

    Parameters
    ----------
    labels : numpy.ndarray
        Integer labels, ``(Y, X)`` or a stack ``(Z, Y, X)`` whose labels are unique across planes.
    table : pandas.DataFrame
        The per-nucleus table measured before the edits (a ``label`` and an ``area`` column).
    pixel_area : float, optional
        Physical area of one pixel, for the ``area_physical`` of edited nuclei.

    Returns
    -------
    pandas.DataFrame
    """
    labels = np.asarray(labels)
    if not _ours(table, labels):
        return table
    now = _shapes(labels)
    pixels = now.groupby("label")["area"].sum()  # a nucleus painted into a second plane: all its pixels
    if "plane" in now.columns:  # ... and one row, where it is largest
        now = now.sort_values("area", ascending=False).drop_duplicates("label").sort_values("label")
    old = table.set_index(table["label"].astype(np.int64))
    now = now.set_index(now["label"].astype(np.int64))
    kept = old.index[old.index.isin(now.index)]
    same = kept[pixels.loc[kept].to_numpy() == old.loc[kept, "area"].to_numpy()]
    if len(same) == len(old) == len(now):
        return table
    edited = now.drop(index=same)
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


def _ours(table: pd.DataFrame, labels: np.ndarray) -> bool:
    """A table this plugin measured for ``labels``: every column of ``measure.COLUMNS`` (``area`` in
    pixels), one row per label, a ``plane`` column only for a stack. Tables of other tools are left
    as they are."""
    from .measure import COLUMNS

    if not len(table) or labels.ndim not in (2, 3) or not set(COLUMNS) <= set(table.columns):
        return False
    ids = pd.to_numeric(table["label"], errors="coerce")
    return bool(ids.notna().all() and ids.is_unique and ("plane" in table.columns) == (labels.ndim == 3))
