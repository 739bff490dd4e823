"""The Segment Nuclei widget's work, with no viewer and no Qt: layer in, layer data tuples out.

The widget runs :func:`segment_image` in a napari thread worker; tests and scripts call it
directly. It never raises: every outcome (result, cancelled, error message) comes back as a
:class:`SegmentOutcome`, so the widget only has to show it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import InvalidImageError, NucleisegError

log = logging.getLogger(__name__)

EACH_SLICE = "each slice"
CURRENT_SLICE = "current slice only"


@dataclass
class ImageInput:
    """What the work needs from an Image layer (plain data, so no viewer is needed).

    Attributes
    ----------
    data : array-like
        ``(Y, X)``, ``(Y, X, C)`` RGB(A), ``(Z, Y, X)`` or ``(Z, Y, X, C)``; NumPy or dask.
    name : str
        Layer name; outputs are called ``<name> nuclei`` etc.
    rgb : bool
        True when the last axis holds colour channels.
    scale, translate : tuple of float, optional
        The layer's spatial scale and translate, copied to every output layer.
    """

    data: object
    name: str = "image"
    rgb: bool = False
    scale: tuple | None = None
    translate: tuple | None = None

    @property
    def spatial_ndim(self) -> int:
        """Number of non-channel axes."""
        return len(np.shape(self.data)) - (1 if self.rgb else 0)

    @property
    def is_stack(self) -> bool:
        """True for a 3D stack / time series of 2D planes."""
        return self.spatial_ndim == 3


@dataclass
class SegmentOutcome:
    """Result of one run: ``layers`` on success, else ``cancelled`` or an ``error`` message.

    ``zoom`` < 1: the image (the most shrunk plane of a stack) was segmented shrunk because its
    nuclei were larger than the model's training size (``sizing``)."""

    layers: list = field(default_factory=list)
    n_nuclei: int = 0
    model: str = ""
    device: str = ""
    seconds: float = 0.0
    zoom: float = 1.0
    cancelled: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the run finished and produced layers."""
        return not self.cancelled and self.error is None


def image_input_from_layer(layer) -> ImageInput:
    """Build an :class:`ImageInput` from a napari layer, checking that it can be segmented.

    Parameters
    ----------
    layer : napari.layers.Layer
        Should be an Image layer with 2D planes (2D, RGB, or a 3D stack).

    Returns
    -------
    ImageInput

    Raises
    ------
    InvalidImageError
        For a non-image layer (e.g. Labels), 4D+ data or an empty image.
    """
    import napari

    if layer is None:
        raise InvalidImageError("no image selected: open an image first (File > Open, or File > Open Sample)")
    if not isinstance(layer, napari.layers.Image):
        kind = type(layer).__name__
        raise InvalidImageError(
            f"'{layer.name}' is a {kind} layer, not an image: choose the microscopy image to segment"
        )
    data = layer.data[0] if layer.multiscale else layer.data
    inp = ImageInput(data, layer.name, bool(layer.rgb), tuple(layer.scale), tuple(layer.translate))
    check_input_shape(inp)
    return inp


def check_input_shape(inp: ImageInput) -> None:
    """Raise InvalidImageError unless ``inp`` is a 2D image or a 3D stack of 2D planes (cheap check)."""
    shape = tuple(np.shape(inp.data))
    if len(shape) == 0 or int(np.prod(shape)) == 0:
        raise InvalidImageError(f"'{inp.name}' is empty (shape {shape})")
    if inp.spatial_ndim < 2:
        raise InvalidImageError(f"'{inp.name}' is not an image (shape {shape})")
    if inp.spatial_ndim > 3:
        raise InvalidImageError(
            f"'{inp.name}' has {inp.spatial_ndim} dimensions {shape}: only 2D images and 3D stacks "
            "(z or time) are supported; split it into stacks first (Layers > Split)"
        )


def _spatial(values, ndim: int, default: float) -> tuple:
    if values is None:
        return (default,) * ndim
    values = tuple(float(v) for v in values)
    return values[-ndim:] if len(values) >= ndim else (default,) * (ndim - len(values)) + values


def _pixel_size(scale) -> tuple[float, float] | None:
    """(y, x) pixel size for the table's ``area_physical``; None for unit (uncalibrated) pixels."""
    yx = tuple(scale[-2:])
    return None if yx == (1.0, 1.0) else yx


def layer_tuples(name: str, labels, probability, uncertainty, table: pd.DataFrame, scale, translate,
                 metadata: dict) -> list[tuple]:
    """The three output layers as napari ``(data, kwargs, layer_type)`` tuples.

    Parameters
    ----------
    name : str
        Input layer name: outputs are ``<name> probability``, ``<name> uncertainty``, ``<name> nuclei``.
    labels, probability, uncertainty : numpy.ndarray
        Same spatial shape (2D or 3D).
    table : pandas.DataFrame
        Per-nucleus table with a ``label`` column; stored as the Labels layer's ``features``
        (with an ``index`` column so napari maps each row to its label).
    scale, translate : tuple of float
        Copied to every layer.
    metadata : dict
        Settings of the run, stored in the Labels layer's metadata.
    """
    features = table.copy()
    features.insert(0, "index", features["label"].astype(np.int64).to_numpy())
    common = {"scale": scale, "translate": translate}
    return [
        (probability, {"name": f"{name} probability", "colormap": "magma", "contrast_limits": (0.0, 1.0),
                       "blending": "additive", "visible": False, **common}, "image"),
        (uncertainty, {"name": f"{name} uncertainty", "colormap": "inferno", "contrast_limits": (0.0, 1.0),
                       "blending": "additive", "visible": False, **common}, "image"),
        (labels, {"name": f"{name} nuclei", "features": features, "opacity": 0.6,
                  "metadata": {"nucleiseg": metadata}, **common}, "labels"),
    ]


def segment_image(
    inp: ImageInput,
    model: str = "default",
    device: str = "auto",
    tta: bool = False,
    threshold: float | None = None,
    min_size: int | None = None,
    diameter: float | str | None = "auto",
    stacks: str = EACH_SLICE,
    current_slice: int = 0,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> SegmentOutcome:
    """Segment an image (or every / the current plane of a stack) and build the output layers.

    Parameters
    ----------
    inp : ImageInput
    model : str
        Zoo model name (``"default"``: the shipped default).
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    tta : bool
        Test-time augmentation.
    threshold, min_size : optional
        Probability threshold and smallest nucleus in pixels; None keeps the model's values.
    diameter : float, "auto" or None
        Typical nucleus diameter in pixels (``pipeline.segment``).
    stacks : str
        ``"each slice"`` or ``"current slice only"`` (for 3D stacks).
    current_slice : int
        Plane used with ``"current slice only"``.
    progress : callable, optional
        ``progress(fraction, message)``, fraction in [0, 1], called from the worker thread.
    cancel : callable, optional
        Returns True to stop; the outcome is then ``cancelled`` and has no layers.

    Returns
    -------
    SegmentOutcome
        Never raises: user errors come back as ``outcome.error``.
    """
    from ..inference.pipeline import combine_planes, segment
    from ..errors import Cancelled

    t0 = time.perf_counter()
    try:
        check_input_shape(inp)
        ndim = inp.spatial_ndim
        scale = _spatial(inp.scale, ndim, 1.0)
        translate = _spatial(inp.translate, ndim, 0.0)
        kw = dict(model=model, device=device, tta=tta, threshold=threshold, min_size=min_size,
                  diameter=diameter, scale=_pixel_size(scale))
        if inp.is_stack:
            n = int(np.shape(inp.data)[0])
            if stacks == CURRENT_SLICE:
                if not 0 <= current_slice < n:
                    raise InvalidImageError(f"slice {current_slice} is outside the stack (0..{n - 1})")
                planes = [current_slice]
            else:
                planes = list(range(n))
        else:
            planes = [None]

        segs = []
        for k, z in enumerate(planes):
            where = f"slice {z + 1}/{np.shape(inp.data)[0]}, " if z is not None else ""

            def tile_progress(done, total, k=k, where=where):
                if progress is not None:
                    progress((k + done / max(total, 1)) / len(planes), f"{where}tile {done}/{total}")

            plane = np.asarray(inp.data if z is None else inp.data[z])
            if progress is not None:
                progress(k / len(planes), f"{where}starting")
            segs.append(segment(plane, progress=tile_progress, cancel=cancel, **kw))
            if cancel is not None and cancel():
                raise Cancelled()

        # stacks: labels unique across planes, the table gains a "plane" column
        seg = combine_planes(segs) if inp.is_stack else segs[0]
        if inp.is_stack and stacks == CURRENT_SLICE:  # outputs keep the stack's shape, other planes empty
            z, shape = planes[0], tuple(np.shape(inp.data)[:3])
            for attr, dtype in (("labels", np.int32), ("probability", np.float32), ("uncertainty", np.float32)):
                full = np.zeros(shape, dtype)
                full[z] = getattr(seg, attr)[0]
                setattr(seg, attr, full)
            seg.table["plane"] = z
        labels, prob, unc, table = seg.labels, seg.probability, seg.uncertainty, seg.table
        device_used, model_used, settings = seg.device, seg.model, seg.settings
        meta = {**settings, "device": device_used, "stacks": stacks if inp.is_stack else None,
                "slices": None if planes == [None] else planes}
        layers = layer_tuples(inp.name, labels, prob, unc, table, scale, translate, meta)
        if progress is not None:
            progress(1.0, "done")
        return SegmentOutcome(layers, len(table), model_used, device_used, time.perf_counter() - t0, seg.zoom)
    except Cancelled:
        return SegmentOutcome(cancelled=True, seconds=time.perf_counter() - t0)
    except (NucleisegError, ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return SegmentOutcome(error=f"Cannot segment '{inp.name}': {msg}", seconds=time.perf_counter() - t0)
    except Exception as exc:  # an unexpected failure must still reach the user, not kill the worker
        log.exception("segmentation failed")
        return SegmentOutcome(error=f"Segmentation of '{inp.name}' failed: {type(exc).__name__}: {exc}",
                              seconds=time.perf_counter() - t0)
