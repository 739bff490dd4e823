"""The Segment Nuclei widget's work, with no viewer and no Qt: layer in, layer data tuples out.

The widget runs :func:`segment_image` in a napari thread worker; tests and scripts call it
directly. It never raises: every outcome (result, cancelled, error message) comes back as a
:class:`SegmentOutcome`, so the widget only has to show it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import InvalidImageError, NucleisegError
from ..inference.measure import mean_confidence, unsure_note
from ..options import SegmentOptions
from .features import label_features

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
    nuclei were larger than the model's training size; > 1: enlarged, as they were much smaller
    (``sizing``). ``smoothing`` > 0: it was noisy, and smoothed a little first (``denoise``).
    ``evened`` > 0: a bright-field image lit unevenly, evened out first (``illumination``).
    ``unsure``: a sentence when the model is unsure of the image (``measure.unsure_note``), else empty.
    ``plane``: the one plane of a stack segmented (*Current slice only*), else None."""

    layers: list = field(default_factory=list)
    n_nuclei: int = 0
    model: str = ""
    device: str = ""
    seconds: float = 0.0
    zoom: float = 1.0
    smoothing: float = 0.0
    cancelled: bool = False
    evened: float = 0.0
    error: str | None = None
    image_kind: str = ""
    unsure: str = ""
    plane: int | None = None

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
    if not inp.rgb and inp.spatial_ndim == 3 and shape[-1] in (2, 3, 4):  # an RGB stack's last axis is colour
        raise InvalidImageError(
            f"'{inp.name}' has shape {shape}, which napari shows as {shape[0]} planes of {shape[1]} x {shape[2]} "
            "pixels; if its last axis holds channels, add one layer per channel (open the file with this "
            "plugin's reader, or viewer.add_image(data, channel_axis=-1)) and segment the nucleus channel"
        )
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


def output_names(name: str) -> dict[str, str]:
    """Names of the output layers of image layer ``name``: ``<name> nuclei``, ``probability``, ``uncertainty``.

    An image already called ``... nuclei`` gets ``... nuclei labels`` rather than ``... nuclei nuclei``.
    """
    nuclei = f"{name} labels" if name.lower().endswith("nuclei") else f"{name} nuclei"
    return {"nuclei": nuclei, "probability": f"{name} probability", "uncertainty": f"{name} uncertainty"}


def layer_tuples(name: str, labels, probability, uncertainty, table: pd.DataFrame, scale, translate,
                 metadata: dict) -> list[tuple]:
    """The three output layers as napari ``(data, kwargs, layer_type)`` tuples.

    Parameters
    ----------
    name : str
        Input layer name: outputs are named by :func:`output_names`.
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
    features = label_features(table)
    common = {"scale": scale, "translate": translate}
    names = output_names(name)
    return [
        (probability, {"name": names["probability"], "colormap": "magma", "contrast_limits": (0.0, 1.0),
                       "blending": "additive", "visible": False, **common}, "image"),
        (uncertainty, {"name": names["uncertainty"], "colormap": "inferno", "contrast_limits": (0.0, 1.0),
                       "blending": "additive", "visible": False, **common}, "image"),
        (labels, {"name": names["nuclei"], "features": features, "opacity": 0.6,
                  "metadata": {"nucleiseg": metadata}, **common}, "labels"),
    ]


def segment_image(
    inp: ImageInput,
    options: SegmentOptions | None = None,
    stacks: str = EACH_SLICE,
    current_slice: int = 0,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    **changes,
) -> SegmentOutcome:
    """Segment an image (or every / the current plane of a stack) and build the output layers.

    Parameters
    ----------
    inp : ImageInput
    options : SegmentOptions, optional
        Model, device, post-processing, diameter (``options.SegmentOptions``); ``**changes``
        (any of its fields, e.g. ``model="unet16"``) are applied over it.
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
    from ..errors import Cancelled
    from ..inference.stack import segment_any
    from ..zoo import unsure_below_of

    t0 = time.perf_counter()
    try:
        check_input_shape(inp)
        opts = SegmentOptions.build(options, **changes)
        ndim = inp.spatial_ndim
        scale, translate = _spatial(inp.scale, ndim, 1.0), _spatial(inp.translate, ndim, 0.0)
        planes = _planes(inp, stacks, current_slice)
        seg = segment_any(inp.data, opts, planes=planes, scale=_pixel_size(scale), progress=progress,
                          cancel=cancel)
        if inp.is_stack and stacks == CURRENT_SLICE:
            _fill_stack(seg, planes[0], tuple(np.shape(inp.data)[:3]))
        meta = {**seg.settings, "device": seg.device, "stacks": stacks if inp.is_stack else None,
                "slices": planes}
        layers = layer_tuples(inp.name, seg.labels, seg.probability, seg.uncertainty, seg.table, scale,
                              translate, meta)
        if progress is not None:
            progress(1.0, "done")
        return SegmentOutcome(layers, len(seg.table), seg.model, seg.device, time.perf_counter() - t0, seg.zoom,
                              seg.smoothing, image_kind=seg.settings.get("image_kind", ""), evened=seg.evened,
                              unsure=unsure_note(mean_confidence(seg.table), unsure_below_of(seg.settings["model"])),
                              plane=planes[0] if inp.is_stack and stacks == CURRENT_SLICE else None)
    except Cancelled:
        return SegmentOutcome(cancelled=True, seconds=time.perf_counter() - t0)
    except (NucleisegError, ValueError, KeyError, FileNotFoundError, TypeError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return SegmentOutcome(error=f"Cannot segment '{inp.name}': {msg}", seconds=time.perf_counter() - t0)
    except Exception as exc:  # an unexpected failure must still reach the user, not kill the worker
        log.exception("segmentation failed")
        return SegmentOutcome(error=f"Segmentation of '{inp.name}' failed: {type(exc).__name__}: {exc}",
                              seconds=time.perf_counter() - t0)


def _planes(inp: ImageInput, stacks: str, current_slice: int) -> list[int] | None:
    """The planes to segment: None for a 2D image, all planes, or the current one."""
    if not inp.is_stack:
        return None
    n = int(np.shape(inp.data)[0])
    if stacks != CURRENT_SLICE:
        return list(range(n))
    if not 0 <= current_slice < n:
        raise InvalidImageError(f"slice {current_slice} is outside the stack (0..{n - 1})")
    return [current_slice]


def _fill_stack(seg, z: int, shape: tuple[int, ...]) -> None:
    """Give a one-plane result the stack's shape, other planes empty (outputs keep the layer's shape)."""
    for attr, dtype in (("labels", np.int32), ("probability", np.float32), ("uncertainty", np.float32)):
        full = np.zeros(shape, dtype)
        full[z] = getattr(seg, attr)[0]
        setattr(seg, attr, full)
    seg.table["plane"] = z
