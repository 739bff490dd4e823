"""The Evaluate widget's choices without Qt: which prediction and ground-truth layers belong together."""

from __future__ import annotations

import numpy as np

from ..errors import ShapeMismatchError

#: Name endings of a prediction (``segment_work.output_names``) and of ground truth (samples, reader).
PREDICTION_ENDS = (" nuclei", " labels")
TRUTH_MARK = "ground truth"


def _base(name: str) -> str:
    for end in PREDICTION_ENDS + (" " + TRUTH_MARK,):
        if name.endswith(end):
            return name[: -len(end)]
    return name


def _shape(layer) -> tuple:
    return tuple(np.shape(layer.data))


def partner(layer, candidates: list):
    """The layer of ``candidates`` that belongs to the same image as ``layer``, or None.

    The same image means the same base name (``"cells nuclei"`` and ``"cells ground truth"``),
    else the only candidate of the same shape.
    """
    others = [c for c in candidates if c is not layer]
    same_name = [c for c in others if _base(c.name) == _base(layer.name) and _shape(c) == _shape(layer)]
    if same_name:
        return same_name[-1]
    same_shape = [c for c in others if _shape(c) == _shape(layer)]
    return same_shape[-1] if len(same_shape) == 1 else None


def default_pair(layers: list) -> tuple:
    """``(prediction, ground truth)`` of the same image, newest prediction first; Nones when none pair."""
    truths = [la for la in layers if TRUTH_MARK in la.name]
    preds = [la for la in reversed(layers) if TRUTH_MARK not in la.name]  # the newest first
    preds.sort(key=lambda la: not (la.name.endswith(PREDICTION_ENDS) or "confidence" in la.features.columns))
    for pred in preds:
        gt = partner(pred, truths)
        if gt is not None:
            return pred, gt
    return (preds[0] if preds else None), None


def check_pair(pred, gt) -> None:
    """Raise ShapeMismatchError when the two layers cannot be compared pixel by pixel."""
    if _shape(pred) != _shape(gt):
        raise ShapeMismatchError(
            f"the layers have different shapes ('{pred.name}' {'x'.join(map(str, _shape(pred)))}, "
            f"'{gt.name}' {'x'.join(map(str, _shape(gt)))}): they are not of the same image; choose the "
            "ground truth drawn on the segmented image")
