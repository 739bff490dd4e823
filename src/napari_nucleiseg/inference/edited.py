"""A nuclei table brought in line with labels the user has edited since it was measured."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .shape import shape_table

#: the columns a table's rows get again from the edited labels alone
SHAPE_COLUMNS = ("area", "centroid_y", "centroid_x", "perimeter", "eccentricity", "solidity")
#: the columns that need the image or the model's maps: emptied for an edited nucleus, whose
#: outline is no longer the model's (any other column, such as the user's own, is kept)
MODEL_COLUMNS = ("mean_intensity", "mean_probability", "confidence")
#: the mean intensity of each channel of a multichannel image (``measure.channel_means``): measured on the
#: image, emptied like ``MODEL_COLUMNS`` when a nucleus is repainted
CHANNEL_COLUMN = re.compile(r"mean_intensity_c\d+")
#: a nucleus is taken as it was measured while its pixel count is the same and these are within
#: the tolerance (pixels; a perimeter too, which catches a reshape around a fixed centroid)
SAME_SHAPE = ("centroid_y", "centroid_x", "perimeter")
SHAPE_TOLERANCE = 1e-3


def model_columns(columns) -> list[str]:
    """The columns of ``columns`` that need the image or the model's maps (``MODEL_COLUMNS``, ``CHANNEL_COLUMN``)."""
    return [c for c in columns if c in MODEL_COLUMNS or CHANNEL_COLUMN.fullmatch(str(c))]


def _shapes(labels: np.ndarray, ids: np.ndarray | None = None) -> pd.DataFrame:
    """``shape_table`` of 2D labels, or of each plane of a stack (with a ``plane`` column); only of the
    nuclei ``ids`` when given (measured in their bounding box, so a few edited nuclei cost little)."""
    if labels.ndim == 3:
        planes = range(len(labels)) if ids is None else np.flatnonzero(np.isin(labels, ids).any(axis=(1, 2)))
        tables = [_shapes(labels[z], ids).assign(plane=z) for z in planes]
        return pd.concat(tables, ignore_index=True) if tables else _shapes(np.zeros((1, 1), np.int64)).assign(plane=0)
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
               ids=None, first: pd.DataFrame | None = None) -> pd.DataFrame:
    """``table`` as the edited ``labels`` now are.

    A nucleus is taken as it was measured while its pixel count, centroid and perimeter are. Rows of nuclei the
    user erased or merged away are dropped. A nucleus that was painted on or is new gets its shape
    again (``SHAPE_COLUMNS``, ``area_physical`` from ``pixel_area``), empty ``MODEL_COLUMNS`` (they
    need the image and the model's maps) and ``edited`` True; its other columns (the user's own) are
    kept. Untouched nuclei keep their rows. A table that matches its labels, or that this plugin did
    not measure (``ours``: another tool's area may be in µm², its labels repeat per frame), is
    returned unchanged. A nucleus painted into several planes of a stack gets one row: the shape of
    its largest plane, the area of all its pixels.

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
    first : pandas.DataFrame, optional
        The table as the model first measured it: a nucleus an undo gave back its outline gets its
        first row again (its confidence, and its own ``edited``; the user's columns are the
        current row's).

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
        now = now.sort_values("area", ascending=False).drop_duplicates("label")
    now = now.set_index(now["label"].astype(np.int64)).sort_index()
    now["area"] = pixels.loc[now.index].to_numpy()
    old = _by_label(table)
    checked = old.index if ids is None else old.index[old.index.isin(ids)]
    same = _as_measured(old.loc[checked], now)
    back = pd.Index([], dtype=np.int64)
    if first is not None and ours(first, labels):
        first = _by_label(first).reindex(columns=old.columns)
        back = _as_measured(first.loc[first.index.isin(now.index.difference(same))], now)
    if len(same) == len(checked) == len(now) and not len(back):
        return table
    edited = now.index.difference(same).difference(back)
    parts = [_flagged(old.loc[old.index.difference(checked).union(same)], None),
             _flagged(_restored_rows(first.loc[back], old), None) if len(back) else None,
             _flagged(_edited_rows(old, now.loc[edited], pixel_area), True)]
    out = pd.concat([p for p in parts if p is not None and len(p)] or [old.iloc[:0]]).sort_index()
    if "edited" not in out.columns:
        out["edited"] = pd.Series(dtype=bool)
    for column in out.columns.drop("edited"):  # as measured (float32 stays float32, as written before)
        out[column] = _typed(out[column], table[column].dtype)
    return out.reset_index(drop=True)


def _by_label(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index(pd.Index(table["label"].astype(np.int64), name=None))


def _as_measured(rows: pd.DataFrame, now: pd.DataFrame) -> pd.Index:
    """The labels of ``rows`` whose nucleus in ``now`` has the pixel count and ``SAME_SHAPE`` of the row."""
    common = rows.index[rows.index.isin(now.index)]
    a, b = rows.loc[common], now.loc[common]
    same = pd.to_numeric(a["area"]).to_numpy(float) == b["area"].to_numpy(float)
    for column in SAME_SHAPE:
        same &= np.abs(pd.to_numeric(a[column]).to_numpy(float) - b[column].to_numpy(float)) <= SHAPE_TOLERANCE
    return common[same]


def _restored_rows(first: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """First-measured rows of nuclei an undo gave back, with the user's columns of their current rows."""
    measured = {"label", "edited", "plane", "area_physical", *SHAPE_COLUMNS, *model_columns(first.columns)}
    rows = first.copy()
    present = rows.index[rows.index.isin(old.index)]
    for column in old.columns.difference(list(measured)):
        rows[column] = rows[column].astype(object)
        rows.loc[present, column] = old.loc[present, column]
    return rows


def _edited_rows(old: pd.DataFrame, now: pd.DataFrame, pixel_area: float | None) -> pd.DataFrame:
    """Rows for nuclei measured again: their earlier row (the user's columns), new shape, empty model columns."""
    rows = old.reindex(now.index).astype(object)
    rows["label"] = now.index
    for column in model_columns(rows.columns):
        rows[column] = np.nan
    for column in (*SHAPE_COLUMNS, *(("plane",) if "plane" in old.columns else ())):
        if column in old.columns and column in now.columns:
            rows[column] = now[column]
    if "area_physical" in old.columns:
        rows["area_physical"] = now["area"] * float(pixel_area) if pixel_area is not None else np.nan
    return rows


def _flagged(rows: pd.DataFrame | None, edited: bool | None) -> pd.DataFrame | None:
    """``rows`` with an ``edited`` column: ``edited``, or the rows' own (False where they have none)."""
    if rows is None:
        return None
    if edited is None:
        kept = rows["edited"] if "edited" in rows.columns else pd.Series(False, index=rows.index)
        return rows.assign(edited=kept.astype("boolean").fillna(False).astype(bool))
    return rows.assign(edited=edited)


def _typed(column: pd.Series, dtype) -> pd.Series:
    """``column`` in the table's own type (a nullable one where edited rows left gaps)."""
    if pd.api.types.is_bool_dtype(dtype):
        return column.astype(dtype if column.notna().all() else "boolean")
    if pd.api.types.is_integer_dtype(dtype):
        return column.astype(dtype if column.notna().all() else "Int64")
    if pd.api.types.is_float_dtype(dtype):
        return column.astype(dtype)
    try:  # a user's categorical or string column stays one
        return column.astype(dtype)
    except (TypeError, ValueError):
        return column


def ours(table: pd.DataFrame, labels: np.ndarray) -> bool:
    """A table this plugin measured for ``labels``: every column of ``measure.COLUMNS`` (``area`` in
    pixels), one row per label (none for labels without nuclei), a ``plane`` column only for a
    stack. Tables of other tools are left as they are."""
    from .measure import COLUMNS

    if labels.ndim not in (2, 3) or not set(COLUMNS) <= set(table.columns):
        return False
    ids = pd.to_numeric(table["label"], errors="coerce")
    return bool(ids.notna().all() and ids.is_unique and ("plane" in table.columns) == (labels.ndim == 3))
