"""A nuclei layer's table (its ``features``) kept in line with its labels while the user paints.

After each stroke, fill, erase, undo or redo (once the edits pause for ``DELAY_MS``), the labels'
pixel counts are compared with those of the last look; only the nuclei whose count changed are
measured again (``inference.edited.remeasured``), so the table, napari's features table widget and
the Review list show the labels as they are. A layer too large to count on every stroke, or held
lazily, is left to the writer, which brings its table in line when it is saved.
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
from qtpy.QtCore import QTimer

from ..inference.edited import ours, remeasured
from .features import label_features, pixel_area

#: edits are measured once they pause this long (a brush stroke emits an event per mouse move)
DELAY_MS = 250
#: larger labels (a long stack) are not counted on every stroke; the writer measures them when saved
MAX_PIXELS = 2**26

_FOLLOWED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def follow_edits(layer) -> bool:
    """Keep ``layer.features`` in line with the labels as the user edits them.

    Parameters
    ----------
    layer : napari.layers.Labels
        A layer whose labels are a NumPy array of at most ``MAX_PIXELS`` pixels; its table is
        changed only where this plugin measured it (``remeasured`` leaves other tools' tables alone).

    Returns
    -------
    bool
        Whether the layer is followed (it may already have been).
    """
    if layer in _FOLLOWED:
        return True
    if getattr(layer, "multiscale", False) or _pixel_counts(layer.data) is None:
        return False
    _FOLLOWED[layer] = _LiveTable(layer)
    return True


def follow_viewer(viewer) -> None:
    """``follow_edits`` every Labels layer of ``viewer`` with this plugin's table, now and as they are
    added (a labels file saved with its table and opened again); connecting twice changes nothing."""
    viewer.layers.events.inserted.connect(_follow_inserted)
    for layer in viewer.layers:
        _follow_ours(layer)


def _follow_inserted(event) -> None:
    _follow_ours(event.value)


def _follow_ours(layer) -> None:
    from napari.layers import Labels

    if isinstance(layer, Labels) and ours(_table(layer), layer.data):
        follow_edits(layer)


def up_to_date(layer) -> bool:
    """Bring a followed layer's table in line with its labels now, without waiting for the edits to
    pause. Returns whether it is (False for a layer ``follow_edits`` does not follow, or whose table
    another tool made)."""
    live = _FOLLOWED.get(layer)
    if live is None or live.counts is None:
        return False
    live.sync()
    return live.counts is not None and ours(_table(layer), layer.data)


class _LiveTable:
    """The pixel counts of one layer at the last look, and the timer that waits for edits to pause."""

    def __init__(self, layer):
        self._layer = weakref.ref(layer)
        self.counts = _pixel_counts(layer.data)
        self._measured = _table(layer)  # as the model measured it: what an undo brings back
        self._history = _history(layer)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(DELAY_MS)
        self._timer.timeout.connect(self.sync)
        self._new_table = self._writing = False
        layer.events.paint.connect(self._schedule)
        layer.events.thumbnail.connect(self._after_refresh)  # undo and redo emit no paint event
        layer.events.data.connect(self._schedule)
        layer.events.features.connect(self._table_replaced)

    def _schedule(self, _event=None):
        self._timer.start()

    def _after_refresh(self, _event=None):
        layer = self._layer()
        history = _history(layer) if layer is not None else None
        if history != self._history:
            self._history = history
            self._timer.start()

    def _table_replaced(self, _event=None):
        """A table set by someone else (a new result with its labels) is taken as matching the labels."""
        if not self._writing:
            self._new_table = True
            self._timer.start()

    def sync(self) -> None:
        """Measure the nuclei whose pixel count changed since the last look and update the table."""
        self._timer.stop()
        layer = self._layer()
        if layer is None:
            return
        counts, before = _pixel_counts(layer.data), self.counts
        self.counts = counts
        if counts is None or before is None or self._new_table:
            self._new_table = False
            self._measured = _table(layer)
            return
        changed = _changed(before, counts)
        if not changed.size:
            return
        table = _table(layer)
        new = remeasured(layer.data, _with_rows_of(table, self._measured, changed), pixel_area(layer.scale),
                         ids=changed)
        if new is not table:
            self._writing = True
            try:
                layer.features = label_features(new)
            finally:
                self._writing = False


def _table(layer) -> pd.DataFrame:
    return layer.features.drop(columns="index", errors="ignore")


def _with_rows_of(table: pd.DataFrame, measured: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """``table`` with the rows of ``ids`` as first measured: a nucleus an undo gave back its pixels
    matches its first row again and gets back its confidence."""
    if not {"label"} <= set(measured.columns) or not {"label"} <= set(table.columns):
        return table
    first = measured[measured["label"].isin(ids)]
    if first.empty:
        return table
    if "edited" in table.columns and "edited" not in first.columns:
        first = first.assign(edited=False)
    rows = pd.concat([table[~table["label"].isin(first["label"])], first], ignore_index=True)
    return rows.sort_values("label", kind="stable").reset_index(drop=True)


def _pixel_counts(data) -> tuple[np.ndarray, np.ndarray] | None:
    """``(labels, pixels)`` of the non-zero labels of ``data``; None for labels that are not an
    in-memory integer array of at most ``MAX_PIXELS`` non-negative values."""
    if not isinstance(data, np.ndarray) or data.dtype.kind not in "iu" or data.size > MAX_PIXELS:
        return None
    if not data.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    top = int(data.max())
    if int(data.min()) < 0:
        return None
    if top <= 4 * data.size:
        pixels = np.bincount(data.ravel().astype(np.intp, copy=False))
        ids = np.flatnonzero(pixels)
        pixels = pixels[ids]
    else:  # a few huge ids: a bincount would be mostly empty
        ids, pixels = np.unique(data, return_counts=True)
    keep = ids > 0
    return ids[keep].astype(np.int64), pixels[keep].astype(np.int64)


def _changed(before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The labels whose pixel count differs between two ``_pixel_counts`` (new and erased ones too)."""
    ids = np.union1d(before[0], after[0])
    old, new = np.zeros(len(ids), np.int64), np.zeros(len(ids), np.int64)
    old[np.searchsorted(ids, before[0])] = before[1]
    new[np.searchsorted(ids, after[0])] = after[1]
    return ids[old != new]


def _history(layer):
    """The lengths of the layer's undo and redo histories, which an undo or redo changes (napari
    tells of neither); without them, a token that never compares equal, so every refresh is checked."""
    undo, redo = getattr(layer, "_undo_history", None), getattr(layer, "_redo_history", None)
    if undo is None or redo is None:
        return object()
    return len(undo), len(redo)
