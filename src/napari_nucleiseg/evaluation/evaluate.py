"""Score a model (or any segmentation function) on labelled samples."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from ..inference.detect import detect_instances, is_instance_model
from ..inference.postprocess import instances
from ..inference.predict import predict_maps
from .metrics import evaluate_image, summarize


def predict_instances(model, image: np.ndarray, device, post: dict | None = None, tta: bool = False):
    """Maps and labels for a prepared image with a model in eval mode (an instance model:
    ``inference.detect.detect_instances``; it has no TTA)."""
    if is_instance_model(model):
        return detect_instances(model, image, device, post)
    maps = predict_maps(model, image, device, tta=tta)
    labels = instances(maps, post or {})
    return maps, labels


def evaluate_model(model, samples: Iterable, device, post: dict | None = None,
                   tta: bool = False) -> dict:
    """DSB score, AP@0.5, F1, PQ and semantic IoU of ``model`` on ``samples`` (mean over images).

    Also reports ``seconds_per_mp``: prediction + post-processing time per megapixel.
    """
    was_training = model.training
    model.eval()
    rows, seconds, pixels = [], 0.0, 0
    for s in samples:
        t0 = time.perf_counter()
        _, labels = predict_instances(model, s.image, device, post, tta)
        seconds += time.perf_counter() - t0
        pixels += s.labels.size
        rows.append(evaluate_image(s.labels, labels))
    model.train(was_training)
    out = summarize(rows)
    out["seconds_per_mp"] = seconds / max(pixels / 1e6, 1e-9)
    return out
