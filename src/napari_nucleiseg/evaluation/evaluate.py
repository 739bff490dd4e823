"""Score a model (or any segmentation function) on labelled samples."""

from __future__ import annotations

import time
from typing import Callable, Iterable

import numpy as np
import torch

from .metrics import evaluate_image, summarize
from ..inference.postprocess import instances_from_maps
from ..inference.predict import predict_maps
from ..inference.sizing import sized_prediction


def predict_instances(model, image: np.ndarray, device, post: dict | None = None, tta: bool = False):
    """Maps and labels for a prepared image with a model in eval mode."""
    maps = predict_maps(model, image, device, tta=tta)
    labels = instances_from_maps(maps["foreground"], maps["border"], **(post or {}))
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


def evaluate_function(fn: Callable[[np.ndarray], np.ndarray], samples: Iterable) -> dict:
    """Same metrics for any ``fn(prepared_image) -> labels`` (e.g. the classical baseline)."""
    rows, seconds, pixels = [], 0.0, 0
    for s in samples:
        t0 = time.perf_counter()
        labels = fn(s.image)
        seconds += time.perf_counter() - t0
        pixels += s.image.size
        rows.append(evaluate_image(s.labels, labels))
    out = summarize(rows)
    out["seconds_per_mp"] = seconds / max(pixels / 1e6, 1e-9)
    return out


@torch.inference_mode()
def cached_maps(model, samples, device, tta=False) -> list[dict]:
    """Predicted maps for each sample, to tune post-processing without re-running the model."""
    model.eval()
    return [predict_maps(model, s.image, device, tta=tta) for s in samples]


def tune_postprocess(maps: list[dict], samples, grid: dict | None = None,
                     min_mean_foreground=(0.0, 0.8, 0.85, 0.9, 0.93, 0.95)) -> tuple[dict, float]:
    """Grid-search post-processing settings for the best mean DSB score on ``samples``.

    Threshold, border threshold and minimum size are searched jointly; the filter on a
    nucleus's mean foreground probability is then chosen for the best of those.
    """
    grid = grid or {
        "threshold": [0.4, 0.5, 0.6],
        "border_threshold": [0.3, 0.4, 0.5, 0.6],
        "min_size": [4, 8, 16],
    }

    def score(post):
        return float(np.mean([
            evaluate_image(s.labels, instances_from_maps(mp["foreground"], mp["border"], **post))["dsb_score"]
            for mp, s in zip(maps, samples)
        ]))

    best, best_score = None, -1.0
    for t in grid["threshold"]:
        for b in grid["border_threshold"]:
            for m in grid["min_size"]:
                post = {"threshold": t, "border_threshold": b, "min_size": m}
                sc = score(post)
                if sc > best_score:
                    best, best_score = post, sc
    best = {**best, "min_mean_foreground": 0.0}
    for f in min_mean_foreground:
        if f > 0:
            sc = score({**best, "min_mean_foreground": f})
            if sc > best_score:
                best, best_score = {**best, "min_mean_foreground": f}, sc
    return best, best_score


@torch.inference_mode()
def sized_maps(model, image: np.ndarray, device, post: dict, target: float | None, tta: bool = False,
               diameter="auto") -> dict:
    """Maps of a prepared image at its full size, predicted at the scale ``segment`` would use
    (``sizing.sized_prediction``; ``target`` None: at the image's own scale)."""
    model.eval()
    return sized_prediction(lambda im: predict_maps(model, im, device, tta=tta), image, post, target, diameter)[0]


def kind_maps(entry, samples, device=None, tta=False, diameter="auto") -> list[dict]:
    """Maps of each sample as ``segment`` makes them: from the model it uses for the sample's
    kind (``ModelEntry.for_kind``), at the scale it chooses (``sizing``)."""
    from .. import zoo

    post, target = entry.postprocess(), entry.target_diameter()
    out = []
    for s in samples:
        model, _, dev = zoo.load_model(entry.for_kind(s.kind), device)
        out.append(sized_maps(model, s.image, dev, post, target, tta, diameter))
    return out
