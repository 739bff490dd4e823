"""A nuclei layer's table (its ``features``) kept in line with its labels while the user paints.

Once edits pause for ``DELAY_MS`` after a stroke, fill, erase, undo, redo or new labels, the table
is compared with the labels: the nuclei whose pixel count differs from their row's area, those
without a row, and those the edits touched (read from napari's edit history) are measured again
(``inference.edited.remeasured``); rows of erased nuclei go. A nucleus an undo gave back its outline
gets the row the model first measured. So the table, napari's features table widget and the Review
list show the labels as they are. A layer too large to count on every stroke, held lazily, or whose
table another tool made, is left alone (the writer brings this plugin's tables in line when saved).
"""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
from qtpy.QtCore import QTimer

from ..inference.edited import ours, remeasured
from .features import label_features, pixel_area
from .proxy import unproxied

#: edits are measured once they pause this long (a brush stroke emits an event per mouse move)
DELAY_MS = 250
#: larger labels (a long stack) are not counted on every stroke; the writer measures them when saved
MAX_PIXELS = 2**24

_FOLLOWED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def follow_edits(layer) -> bool:
    """Keep ``layer.features`` in line with the labels as the user edits them.

    Parameters
    ----------
    layer : napari.layers.Labels
        A layer whose labels are a NumPy array of at most ``MAX_PIXELS`` pixels; its table is
        changed only where this plugin measured it (``edited.ours``).

    Returns
    -------
    bool
        Whether the layer is followed (it may already have been).
    """
    layer = unproxied(layer)
    if layer in _FOLLOWED:
        return True
    if getattr(layer, "multiscale", False) or not _countable(layer.data):
        return False
    _FOLLOWED[layer] = _LiveTable(layer)
    return True


def follow_viewer(viewer) -> None:
    """``follow_edits`` every Labels layer of ``viewer`` with this plugin's table, now and as they are
    added (a labels file saved with its table and opened again); connecting twice changes nothing."""
    viewer.layers.events.inserted.connect(_follow_inserted)
    for layer in viewer.layers:
        follow_if_ours(layer)


def _follow_inserted(event) -> None:
    follow_if_ours(event.value)


def follow_if_ours(layer):
    """``follow_edits`` a Labels layer whose table this plugin measured; any other layer is left
    alone. Returns the layer."""
    from napari.layers import Labels

    layer = unproxied(layer)
    if isinstance(layer, Labels) and ours(_table(layer), layer.data):
        follow_edits(layer)
    return layer


def up_to_date(layer) -> bool:
    """Bring a followed layer's table in line with its labels now, without waiting for the edits to
    pause. Returns whether it is (False for a layer ``follow_edits`` does not follow, one too large or
    lazy, or one whose table another tool made)."""
    layer = unproxied(layer)
    live = _FOLLOWED.get(layer)
    if live is None:
        return False
    live.sync()
    return ours(_table(layer), layer.data) and _countable(layer.data)


class _LiveTable:
    """What one layer's table needs to follow its labels: the nuclei the edits touched since the last
    look, the table as first measured, and the timer that waits for edits to pause."""

    def __init__(self, layer):
        self._layer = weakref.ref(layer)
        self._first = self._seen = layer.features
        self._touched: list[np.ndarray] = []
        self._dirty = True  # the labels may have been edited before they were followed
        self._writing = self._labels_replaced = False
        self._history = _history(layer)
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(DELAY_MS)
        self._timer.timeout.connect(self.sync)
        layer.events.paint.connect(self._painted)
        layer.events.thumbnail.connect(self._after_refresh)  # undo and redo emit no paint event
        layer.events.data.connect(self._new_labels)
        layer.events.features.connect(self._table_set)
        self._timer.start()

    def _schedule(self, _event=None):
        self._dirty = True
        self._timer.start()

    def _painted(self, event):
        layer = self._layer()
        self._history = _history(layer) if layer is not None else None
        self._touched.append(_atom_ids(getattr(event, "value", None)))
        self._schedule()

    def _after_refresh(self, _event=None):
        layer = self._layer()
        if layer is None:
            return
        history = _history(layer)
        if history != self._history:
            self._touched.append(_undone_ids(layer, self._history, history))
            self._history = history
            if not isinstance(history, tuple):  # napari keeps no histories we can read: wait for a pause
                self._schedule()
                return
            self._dirty = True
            self.sync()  # at once: an undo is one key press, and may be followed by a save

    def _new_labels(self, _event=None):
        self._labels_replaced = True
        self._schedule()

    def _table_set(self, _event=None):
        """A table that comes with new labels (a new result) is what later undos go back to; one set
        alone (the user's own column) keeps the first rows. napari also tells of new labels this way."""
        layer = self._layer()
        if self._writing or layer is None:
            return
        if layer.features is not self._seen:
            self._seen = layer.features
            if self._labels_replaced:
                self._first = layer.features
        self._schedule()

    def sync(self) -> None:
        """Measure the nuclei that changed since the table was written and update it."""
        self._timer.stop()
        layer = self._layer()
        if layer is None or not self._dirty:
            return
        self._dirty = self._labels_replaced = False
        touched = np.concatenate([np.zeros(0, np.int64), *self._touched])
        self._touched = []
        table = _table(layer)
        counts = _pixel_counts(layer.data)
        if counts is None or not ours(table, layer.data):
            return
        rows = (table["label"].to_numpy(np.int64), pd.to_numeric(table["area"]).to_numpy(np.int64))
        changed = np.union1d(_changed(rows, counts), touched)
        if not changed.size:
            return
        first = _table(layer, self._first)
        new = remeasured(layer.data, table, pixel_area(layer.scale), ids=changed, first=first)
        if new is not table:
            self._writing = True
            try:
                layer.features = label_features(new)
            finally:
                self._writing = False
            self._seen = layer.features


def _table(layer, features=None) -> pd.DataFrame:
    features = layer.features if features is None else features
    return features.drop(columns="index", errors="ignore")


def _countable(data) -> bool:
    """Labels cheap enough to count on every look: an in-memory integer array of at most ``MAX_PIXELS``."""
    return isinstance(data, np.ndarray) and data.dtype.kind in "iu" and data.size <= MAX_PIXELS


def _pixel_counts(data) -> tuple[np.ndarray, np.ndarray] | None:
    """``(labels, pixels)`` of the non-zero labels of ``data``; None for labels that are not
    ``_countable`` or hold negative values."""
    if not _countable(data):
        return None
    flat = data.ravel()
    if not flat.size:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if data.dtype.kind == "i" and int(flat.min()) < 0:
        return None
    dense = 4 * flat.size  # ids above it (typed by hand) are counted apart: a bincount would be mostly empty
    large = flat > dense
    some_large = bool(large.any())
    pixels = np.bincount((np.where(large, 0, flat) if some_large else flat).astype(np.intp, copy=False))
    ids = np.flatnonzero(pixels)
    pixels = pixels[ids]
    if some_large:
        big, big_pixels = np.unique(flat[large], return_counts=True)
        ids, pixels = np.concatenate([ids, big]), np.concatenate([pixels, big_pixels])
    keep = ids > 0
    return ids[keep].astype(np.int64), pixels[keep].astype(np.int64)


def _changed(before: tuple[np.ndarray, np.ndarray], after: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The labels whose pixel count differs between two ``(labels, pixels)`` (new and erased ones too)."""
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


def _undone_ids(layer, before, after) -> np.ndarray:
    """The labels of the edit one undo or redo replayed (the last item it moved between napari's
    histories); none when the step is not one undo or redo (the pixel counts still tell most)."""
    if not (isinstance(before, tuple) and isinstance(after, tuple)):
        return np.zeros(0, np.int64)
    (u0, r0), (u1, r1) = before, after
    if (u1, r1) == (u0 - 1, r0 + 1) and r1:
        return _atom_ids(layer._redo_history[-1])
    if (u1, r1) == (u0 + 1, r0 - 1) and u1:
        return _atom_ids(layer._undo_history[-1])
    return np.zeros(0, np.int64)


def _atom_ids(item) -> np.ndarray:
    """The labels before and after the edits of one napari history item (its atoms: masked paint
    atoms with ``old_values`` and ``new_value``, or ``(indices, old, new)`` tuples)."""
    values = []
    for atom in item or ():
        if hasattr(atom, "old_values") and hasattr(atom, "new_value"):
            values += [np.ravel(atom.old_values), np.ravel(atom.new_value)]
        elif isinstance(atom, tuple) and len(atom) == 3:
            values += [np.ravel(atom[1]), np.ravel(atom[2])]
    if not values:
        return np.zeros(0, np.int64)
    ids = np.unique(np.concatenate([v.astype(np.int64, copy=False) for v in values]))
    return ids[ids > 0]
