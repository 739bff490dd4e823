"""The Fine-tune widget's work without Qt: napari layers -> training pairs -> ``finetune.fine_tune``.

:func:`run_finetune` never raises; the widget runs it in a thread worker and only shows the
:class:`FinetuneOutcome`. Tests call these functions directly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import FinetuneCancelled, FinetuneError, NucleisegError, ShapeMismatchError
from ..training import finetune as _finetune
from ..training.finetune import FinetuneResult

log = logging.getLogger(__name__)


@dataclass
class TrainingSet:
    """Arrays and names ready for :func:`finetune.fine_tune`."""

    pairs: list
    regions: list | None
    names: list

    def __len__(self) -> int:
        return len(self.pairs)

    def loaded(self) -> TrainingSet:
        """The set with lazy planes (``layer_plane(lazy=True)``) read into memory."""
        return TrainingSet([(np.asarray(i), np.asarray(lab)) for i, lab in self.pairs], self.regions, self.names)


@dataclass
class FinetuneOutcome:
    """Result of one run: ``result`` on success, else an ``error`` message."""

    result: FinetuneResult | None = None
    error: str | None = None
    cancelled: bool = False  # stopped before the first step: nothing went wrong, nothing was saved

    @property
    def ok(self) -> bool:
        """True when a model was saved."""
        return self.result is not None


def _spatial_ndim(layer) -> int:
    return layer.data.ndim - (1 if getattr(layer, "rgb", False) else 0)


def layer_plane(layer, current_slice=0, lazy: bool = False):
    """The 2D plane of an Image or Labels layer (the given slice of a 3D stack; ``current_slice``
    may be a function of the layer, for stacks that each show their own plane). ``lazy``: a layer
    whose data is not in memory (dask, zarr) gives a dask array, read later off the GUI thread.

    Raises
    ------
    FinetuneError
        For 4D+ data or a slice outside the stack.
    """
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    nd = _spatial_ndim(layer)
    read = _as_lazy if lazy else np.asarray
    if nd == 2:
        return read(data)
    if nd == 3:
        current_slice = current_slice(layer) if callable(current_slice) else current_slice
        n = data.shape[0]
        if not 0 <= current_slice < n:
            raise FinetuneError(f"'{layer.name}': slice {current_slice} is outside the stack (0..{n - 1})")
        return read(_as_lazy(data)[current_slice] if lazy else data[current_slice])
    raise FinetuneError(f"'{layer.name}' has {nd} dimensions: use 2D images or the slice shown of a stack")


def _as_lazy(data):
    if isinstance(data, np.ndarray):
        return data
    import dask.array as da

    return data if isinstance(data, da.Array) else da.from_array(data, chunks=data.shape)


def rectangles_on(shapes_layer, image_layer) -> list[tuple[int, int, int, int]]:
    """Bounding boxes ``(y0, x0, y1, x1)``, in ``image_layer`` pixels, of every shape in ``shapes_layer``.

    Vertices go through world coordinates, so layers with different scale or translate line up.
    Boxes that miss the image are dropped.
    """
    image_nd = _spatial_ndim(image_layer)
    data = image_layer.data[0] if getattr(image_layer, "multiscale", False) else image_layer.data
    h, w = data.shape[:image_nd][-2:]
    boxes = []
    for verts in shapes_layer.data:
        pts = []
        for v in np.asarray(verts, float):
            world = np.asarray(shapes_layer.data_to_world(v), float)
            full = np.zeros(image_nd)
            full[-min(image_nd, world.size):] = world[-min(image_nd, world.size):]
            pts.append(np.asarray(image_layer.world_to_data(full), float)[-2:])
        pts = np.array(pts)
        y0, x0 = np.floor(pts.min(0)).astype(int)
        y1, x1 = np.ceil(pts.max(0)).astype(int)
        y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, h), min(x1, w)
        if y1 - y0 >= 8 and x1 - x0 >= 8:
            boxes.append((int(y0), int(x0), int(y1), int(x1)))
    return boxes


def training_set(layer_pairs, shapes_layer=None, current_slice=0) -> TrainingSet:
    """Planes of (Image layer, Labels layer) pairs, one entry per rectangle when ``shapes_layer`` is given
    (the plane ``current_slice`` of stacks: a number, or a function of the layer as ``layer_plane`` takes);
    planes not in memory stay lazy (``TrainingSet.loaded`` reads them).

    Raises
    ------
    FinetuneError
        No pairs, a missing layer, or no rectangle on an image.
    """
    if not layer_pairs:
        raise FinetuneError("add at least one (image, labels) pair to train on")
    pairs, regions, names = [], [], []
    for image_layer, labels_layer in layer_pairs:
        if image_layer is None or labels_layer is None:
            raise FinetuneError("choose both an image layer and the labels layer drawn on it")
        img = layer_plane(image_layer, current_slice, lazy=True)
        lab = layer_plane(labels_layer, current_slice, lazy=True)
        name = f"{image_layer.name} / {labels_layer.name}"
        if img.shape[:2] != lab.shape:
            raise ShapeMismatchError(
                f"'{image_layer.name}' is {img.shape[0]}x{img.shape[1]} pixels but '{labels_layer.name}' is "
                f"{'x'.join(map(str, lab.shape))}: the labels do not match the image; choose the labels "
                "drawn on this image")
        if shapes_layer is None or len(shapes_layer.data) == 0:
            pairs.append((img, lab))
            regions.append(None)
            names.append(name)
            continue
        boxes = rectangles_on(shapes_layer, image_layer)
        if not boxes:
            raise FinetuneError(f"no rectangle of '{shapes_layer.name}' lies on '{image_layer.name}': draw one "
                                "around the part you corrected, or choose no Shapes layer")
        for k, box in enumerate(boxes):
            pairs.append((img, lab))
            regions.append(box)
            names.append(name + (f" [{k + 1}]" if len(boxes) > 1 else ""))
    return TrainingSet(pairs, regions if any(r is not None for r in regions) else None, names)


def run_finetune(base_model: str, train: TrainingSet, validation: TrainingSet | None = None,
                 **kwargs) -> FinetuneOutcome:
    """Call :func:`finetune.fine_tune` (the same function as the CLI); never raises.

    Parameters
    ----------
    base_model : str
    train, validation : TrainingSet
    **kwargs
        Passed on: ``steps``, ``time_budget_s``, ``lr``, ``device``, ``name``, ``progress``, ``cancel``...
        (lazy ``replay_images`` and planes of ``train``/``validation`` are read here, in the worker).
    """
    try:
        train, validation = train.loaded(), validation.loaded() if validation else None
        kwargs["replay_images"] = [np.asarray(p) for p in kwargs.get("replay_images") or []] or None
        res = _finetune.fine_tune(
            base_model, train.pairs, regions=train.regions, image_names=train.names,
            validation=validation.pairs if validation else None,
            validation_regions=validation.regions if validation else None,
            validation_names=validation.names if validation else None, **kwargs)
        return FinetuneOutcome(result=res)
    except FinetuneCancelled as exc:
        return FinetuneOutcome(error=f"Fine-tuning not done: {exc}", cancelled=True)
    except (NucleisegError, ValueError, KeyError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        return FinetuneOutcome(error=f"Fine-tuning not done: {msg}")
    except Exception as exc:  # must reach the user rather than kill the worker silently
        log.exception("fine-tuning failed")
        return FinetuneOutcome(error=f"Fine-tuning failed: {type(exc).__name__}: {exc}")
