"""napari-nucleiseg: nucleus segmentation with a model zoo, watershed instances and uncertainty.

Importing this package never imports Qt or napari; ``segment`` is loaded lazily.
"""

__version__ = "0.1.0"

__all__ = ["__version__", "segment", "Segmentation"]


def __getattr__(name):
    if name in ("segment", "Segmentation"):
        from .inference import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'napari_nucleiseg' has no attribute {name!r}")
