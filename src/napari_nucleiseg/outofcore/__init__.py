"""Out-of-core segmentation: images larger than memory, block by block, locally or on a Dask
cluster (``segment_out_of_core``); ``docs/outofcore.md`` describes the method and the output.

The names below are imported on first use, so that the command line can read ``blocks.DEFAULT_BLOCK``
without loading torch."""

import importlib

_WHERE = {"OutOfCoreResult": "run", "segment_out_of_core": "run", "ImageSource": "source", "open_source": "source"}

__all__ = ["ImageSource", "OutOfCoreResult", "open_source", "segment_out_of_core"]


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
