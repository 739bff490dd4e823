"""Out-of-core segmentation: images larger than memory, block by block, locally or on a Dask
cluster (``segment_out_of_core``); ``docs/outofcore.md`` describes the method and the output."""

from .run import OutOfCoreResult, segment_out_of_core
from .source import ImageSource, open_source

__all__ = ["ImageSource", "OutOfCoreResult", "open_source", "segment_out_of_core"]
