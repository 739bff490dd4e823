"""Put result layers into a viewer, replacing earlier results of the same name instead of piling up."""

from __future__ import annotations

from napari.layers import Layer

_UPDATABLE = ("scale", "translate", "features", "metadata", "contrast_limits")


def put_layers(viewer, layer_data: list[tuple]) -> list[Layer]:
    """Add ``(data, kwargs, layer_type)`` tuples to ``viewer``; a layer with the same name is replaced.

    A same-named layer of the same type and dimensionality is updated in place (so the
    user's colours, opacity and visibility are kept); any other same-named layer is
    removed and the new one takes its place in the layer list.

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
        old = viewer.layers[name] if name in viewer.layers else None
        if old is not None and type(old) is type(new) and old.ndim == new.ndim:
            # keep the user's display settings; replace data and what describes it
            old.data = new.data
            for attr in _UPDATABLE:
                if attr in kwargs:
                    setattr(old, attr, kwargs[attr])
            out.append(old)
            continue
        if old is not None:
            index = viewer.layers.index(old)
            viewer.layers.remove(old)
            viewer.layers.insert(index, new)
        else:
            viewer.layers.append(new)
        out.append(new)
    return out
