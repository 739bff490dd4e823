"""Put result layers into a viewer, replacing earlier results of the same name instead of piling up."""

from __future__ import annotations

import weakref

import numpy as np
import pandas as pd
from napari.layers import Layer

from .live_table import follow_if_ours
from .proxy import unproxied

_UPDATABLE = ("scale", "translate", "features", "metadata", "contrast_limits")
#: Labels layers put here whose ``paint`` and ``data`` events are watched; those painted in, and those given
#: other data, since their data was put
_WATCHED: weakref.WeakSet = weakref.WeakSet()
_PAINTED: weakref.WeakSet = weakref.WeakSet()
_REPLACED: weakref.WeakSet = weakref.WeakSet()


def put_layers(viewer, layer_data: list[tuple]) -> list[Layer]:
    """Add ``(data, kwargs, layer_type)`` tuples to ``viewer``; a layer with the same name is replaced.

    A same-named layer of the same type, dimensionality and multiscale-ness is updated in place
    (so the user's colours, opacity and visibility are kept; its undo history, which belongs to the
    old data, is cleared); any other same-named layer is removed and the new one takes its place in
    the layer list. A Labels layer with this plugin's nuclei table keeps that table in line with
    the user's edits (``live_table.follow_if_ours``).

    Parameters
    ----------
    viewer : napari.Viewer
    layer_data : list of tuple
        ``(data, kwargs, layer_type)``, kwargs must contain ``name``.

    Returns
    -------
    list of napari.layers.Layer
        The layers now holding the data, in the order given.
    """
    out = []
    for data, kwargs, layer_type in layer_data:
        name = kwargs["name"]
        new = Layer.create(data, kwargs, layer_type)
        old = unproxied(viewer.layers[name]) if name in viewer.layers else None
        if (old is not None and type(old) is type(new) and old.ndim == new.ndim
                and getattr(old, "multiscale", False) == getattr(new, "multiscale", False)):
            # keep the user's display settings; replace data and what describes it
            old.data = new.data
            for attr in _UPDATABLE:
                if attr in kwargs:
                    setattr(old, attr, kwargs[attr])
            if hasattr(old, "_reset_history"):  # undo would paint the old strokes into the new labels
                old._reset_history()
            if hasattr(old, "show_selected_label"):  # a label picked in the old result means nothing now
                old.show_selected_label = False
            _PAINTED.discard(old)
            _REPLACED.discard(old)
            out.append(_watched(follow_if_ours(old)))
            continue
        if old is not None:
            index = viewer.layers.index(old)
            viewer.layers.remove(old)
            viewer.layers.insert(index, new)
        else:
            viewer.layers.append(new)
        out.append(_watched(follow_if_ours(new)))
    return out


def _watched(layer: Layer) -> Layer:
    """``layer``, its paint strokes, fills, erasures and new data noted (``painted``) if it is a Labels layer."""
    if hasattr(layer.events, "paint") and layer not in _WATCHED:
        _WATCHED.add(layer)
        layer.events.paint.connect(_noting(layer, _PAINTED))
        layer.events.data.connect(_noting(layer, _REPLACED))
    return layer


def _noting(layer: Layer, into: weakref.WeakSet):
    """An event callback that adds ``layer`` to ``into`` (holding the layer weakly)."""
    ref = weakref.ref(layer)

    def add(_event):
        if ref() is not None:
            into.add(ref())
    return add


def painted(layer) -> bool:
    """True when the user has changed a Labels layer's labels: given it other data since ``put_layers``
    put them, or painted strokes that its undo history still holds (all undone: unchanged); where napari
    keeps no history this plugin can read, any stroke since they were put (its public ``paint`` event)."""
    layer = unproxied(layer)
    history = getattr(layer, "_undo_history", None)
    strokes = bool(history) if history is not None else layer in _PAINTED
    return layer in _REPLACED or strokes


def untouched_result(layer) -> bool:
    """True for a Labels layer that ``put_layers`` put and nobody has changed since: the model's own
    result, not a correction."""
    return unproxied(layer) in _WATCHED and not painted(layer)


def keep_edited_labels(viewer, layer_data: list[tuple]) -> list[str]:
    """Rename each Labels layer that new results would replace and that the user has changed
    (``painted``) to ``<name> (corrected)``, so ``put_layers`` adds the new result beside it
    instead of over the corrections. Returns the new names."""
    kept = []
    for _, kwargs, layer_type in layer_data:
        name = kwargs["name"]
        old = viewer.layers[name] if layer_type == "labels" and name in viewer.layers else None
        if old is None or not painted(old):
            continue
        new, n = f"{name} (corrected)", 2
        while new in viewer.layers:
            new, n = f"{name} (corrected {n})", n + 1
        old.name = new
        kept.append(new)
    return kept


def merge_plane(viewer, layer_data: list[tuple], z: int) -> list[tuple]:
    """The layers of a result for plane ``z`` of a stack (other planes empty) merged into the
    same-named layers of the stack's shape already in ``viewer``: their other planes and those
    planes' table rows are kept, plane ``z`` is replaced, its new labels numbered after the kept ones."""
    out = []
    for data, kwargs, layer_type in layer_data:
        old = viewer.layers[kwargs["name"]] if kwargs["name"] in viewer.layers else None
        if old is None or getattr(old, "multiscale", False) or np.shape(old.data) != np.shape(data):
            out.append((data, kwargs, layer_type))
            continue
        merged = np.array(old.data, copy=True)
        if layer_type == "labels":
            others = merged.copy()
            others[z] = 0
            offset = int(others.max())
            merged[z] = np.where(data[z] > 0, data[z] + offset, 0)
            table, kept = kwargs.get("features"), old.features
            if isinstance(table, pd.DataFrame):
                table = table.assign(**{c: table[c] + offset for c in ("index", "label") if c in table})
                if "plane" in kept.columns and len(kept):
                    table = pd.concat([kept[kept["plane"] != z], table], ignore_index=True)
                kwargs = {**kwargs, "features": table}
        else:
            merged[z] = data[z]
        out.append((merged, kwargs, layer_type))
    return out
