"""Corrected (image, labels) pairs made ready for training, and the models a run starts from and hands back to."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...errors import EmptyLabelsError, FinetuneError, InvalidImageError, ShapeMismatchError
from ...inference.checks import check_image, within_float32
from ...inference.kinds import KINDS, image_kind
from ...io.images import as_labels


def _label_name(names, i, kind="image"):
    if names is not None and i < len(names) and names[i]:
        return str(names[i])
    return f"{kind} {i + 1}"


def _clip_region(region, shape):
    """``(region, ok)``: integer ``(y0, x0, y1, x1)`` clipped to ``shape`` (None stays None);
    ``ok`` is False when less than 8x8 pixels remain."""
    if region is None:
        return None, True
    y0, x0, y1, x1 = (int(round(float(v))) for v in region)
    y0, y1 = sorted((y0, y1))
    x0, x1 = sorted((x0, x1))
    y0, x0 = max(y0, 0), max(x0, 0)
    y1, x1 = min(y1, shape[0]), min(x1, shape[1])
    if y1 - y0 < 8 or x1 - x0 < 8:
        return (y0, x0, y1, x1), False
    return (y0, x0, y1, x1), True


def _checked_arrays(image, labels, nm):
    """``image`` and ``labels`` as arrays; raises when they cannot be a training pair."""
    image = np.asarray(image)
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ShapeMismatchError(f"{nm}: labels must be a 2D image, got shape {labels.shape}")
    if image.shape[:2] != labels.shape or image.ndim not in (2, 3):
        raise ShapeMismatchError(
            f"{nm}: image shape {image.shape} does not match labels shape {labels.shape}; "
            "the labels must be drawn on the same image (same height and width)"
        )
    image = _checked_image(image, nm)
    try:
        labels = as_labels(labels, f"{nm}: labels")
    except InvalidImageError as exc:
        raise FinetuneError(str(exc)) from None
    return image, labels


def _checked_image(image, nm: str) -> np.ndarray:
    """``image`` as ``segment()`` takes it (``checks.check_image``, within float32), or one line naming ``nm``."""
    image = np.asarray(image)
    try:
        check_image(image)
    except InvalidImageError as exc:
        raise FinetuneError(f"{nm}: {exc}") from None
    return within_float32(image)[0]


def _prepare_one(image, labels, region, nm, invert, target, channels=1, stain_signal="darkest"):
    """One checked pair -> ``(Sample, info)``: prepared as ``segment()`` does (uneven light of a
    bright-field image evened out over the whole image, ``illumination``), cut to ``region``,
    relabelled into connected components, rescaled to the model's nucleus size as ``segment()``
    rescales it (``sizing.prediction_zoom``) and smoothed as ``segment()`` smooths a noisy input
    (``denoise``), so the network learns on what it will see."""
    from skimage.measure import label as cc_label

    from ...inference.denoise import measured_smoothing, smooth
    from ...inference.preprocess import prepare_channels
    from ...inference.sizing import median_diameter, prediction_zoom, shrink, shrink_labels
    from ..dataset import Sample

    image_type = image_kind(image, invert)
    x = prepare_channels(image, channels=channels, kind=image_type, stain_signal=stain_signal)
    region, ok = _clip_region(region, labels.shape)
    if not ok:
        raise FinetuneError(f"{nm}: the rectangle {region} is smaller than 8x8 pixels inside the image")
    if region is not None:
        y0, x0, y1, x1 = region
        x = x[..., y0:y1, x0:x1]
        labels = labels[y0:y1, x0:x1]
    lab = cc_label(labels.astype(np.int64), background=0, connectivity=1).astype(np.int32)
    n = int(lab.max())
    if n == 0:
        where = " inside the rectangle" if region is not None else ""
        raise EmptyLabelsError(f"{nm}: the labels contain no nuclei{where}; draw or correct some first")
    zoom = prediction_zoom(median_diameter(lab), target, lab.shape)
    if zoom != 1.0:
        x, lab = shrink(x, zoom), shrink_labels(lab, zoom)
    smoothing = measured_smoothing(x)[1]
    x = smooth(x, smoothing)
    info = {"name": nm, "shape": list(image.shape), "region": list(region) if region else None,
            "nuclei": n, "kind": image_type, "zoom": round(zoom, 4), "smoothing": smoothing}
    return Sample(np.ascontiguousarray(x, np.float32), lab, nm, image_type), info


def replay_input(image, nm: str, invert=None, channels: int = 1, stain_signal: str = "darkest"):
    """A replay image (no labels) prepared as ``_prepare_one`` prepares a pair, at its own scale:
    checked, the kind's input with the model's stain signal, smoothed as measured. Returns
    ``(input, kind)``."""
    from ...inference.denoise import measured_smoothing, smooth
    from ...inference.preprocess import prepare_channels

    image = _checked_image(image, nm)
    kind = image_kind(image, invert)
    x = prepare_channels(image, channels=channels, kind=kind, stain_signal=stain_signal)
    return np.ascontiguousarray(smooth(x, measured_smoothing(x)[1]), np.float32), kind


def prepare_pairs(pairs: Sequence, regions=None, names=None, invert=None, kind="image", target=None,
                  channels: int = 1, stain_signal: str = "darkest"):
    """Check and prepare (image, labels) pairs for training.

    Parameters
    ----------
    pairs : sequence of (image, labels)
        ``image`` is ``(Y, X)`` grey or ``(Y, X, 3|4)`` RGB(A) in any dtype; ``labels`` is
        ``(Y, X)`` (0 = background). Labels painted with a single value are split into
        connected components.
    regions : sequence, optional
        Per pair ``(y0, x0, y1, x1)`` or None: only this rectangle of the pair is used.
    names : sequence of str, optional
        Names for messages and for the model card.
    invert : bool, optional
        Passed to ``preprocess.prepare_channels`` (None: detect bright-field).
    target : float, optional
        The model's ``sizing.target_diameter``: pairs whose corrected nuclei are larger are
        shrunk to it, and those whose nuclei are much smaller enlarged, as ``segment()`` rescales
        such images before predicting (``sizing.prediction_zoom``).
    channels : int
        The model's input channels (``preprocess.prepare_channels``).
    stain_signal : str
        The nucleus signal of stained images the model takes (``preprocess.nucleus_signal``).

    Returns
    -------
    samples : list of dataset.Sample
    info : list of dict
        Per pair: name, shape, region and number of nuclei (for the model card).

    Raises
    ------
    ShapeMismatchError, EmptyLabelsError, FinetuneError
    """
    if not pairs:
        raise FinetuneError(f"no {kind} pairs given: choose at least one image and its labels")
    if regions is not None and len(regions) != len(pairs):
        raise FinetuneError(f"{len(regions)} regions for {len(pairs)} {kind} pairs")
    samples, info = [], []
    for i, (image, labels) in enumerate(pairs):
        nm = _label_name(names, i, kind)
        image, labels = _checked_arrays(image, labels, nm)
        region = regions[i] if regions is not None else None
        sample, one = _prepare_one(image, labels, region, nm, invert, target, channels, stain_signal)
        samples.append(sample)
        info.append(one)
    return samples, info


def start_and_routes(entry, kinds: set[str]):
    """Where fine-tuning starts, and which models keep the image kinds it was not shown.

    Images of one kind start from the model ``entry`` uses for that kind (its specialist, if
    any: ``ModelEntry.for_kind``). The new model then segments the kinds it was trained on; every
    other kind stays with the model that segmented it before (``specialists`` of the new card),
    so corrections on one kind of image cannot make the others worse.

    Returns
    -------
    (ModelEntry, dict)
        The start model and the new card's ``specialists`` (kind -> model name).
    """
    start = entry.for_kind(next(iter(kinds))) if len(kinds) == 1 else entry
    return start, {k: entry.for_kind(k).name for k in KINDS if k not in kinds}
