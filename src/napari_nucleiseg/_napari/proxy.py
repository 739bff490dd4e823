"""The napari object behind the proxy a docked widget's viewer hands out."""

from __future__ import annotations


def unproxied(obj):
    """``obj`` without napari's ``PublicOnlyProxy`` (the wrapper of everything a docked widget's viewer
    gives), else ``obj`` itself.

    The proxy warns on each private attribute read (napari 0.9; refused from 0.10), and each read
    makes a new wrapper, so a wrapper is neither a stable key nor of the layer's own type. The
    private attributes this plugin reads (napari's edit histories and task list) are looked up on the
    object itself, each with a fallback for a napari without them.
    """
    return getattr(obj, "__wrapped__", obj)
