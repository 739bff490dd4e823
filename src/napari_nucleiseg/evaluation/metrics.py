"""Instance metrics: DSB 2018 score, AP@t (TP/(TP+FP+FN)), F1, panoptic quality, aggregated
Jaccard index (AJI, the pathology papers' metric), semantic IoU.

Matching is one-to-one: at IoU thresholds >= 0.5 a predicted nucleus can overlap at
most one ground-truth nucleus by more than half, so thresholding the IoU matrix is an
exact maximum matching. A hit at threshold ``t`` needs ``IoU > t`` (the DSB rule).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from skimage.segmentation import relabel_sequential

from ..errors import Cancelled

DSB_THRESHOLDS = np.arange(0.5, 1.0, 0.05)


class Pairs(NamedTuple):
    """The overlapping (true, predicted) nucleus pairs of two label images, sparse: memory follows
    the number of pairs, not true x predicted nuclei. Nuclei are indexed 0..n-1 in the order of
    their ids (``true_ids``, ``pred_ids``)."""

    true_ids: np.ndarray
    pred_ids: np.ndarray
    area_true: np.ndarray
    area_pred: np.ndarray
    true: np.ndarray  # per pair: index of the true nucleus
    pred: np.ndarray  # per pair: index of the predicted nucleus
    inter: np.ndarray
    iou: np.ndarray


def overlap_pairs(gt: np.ndarray, pred: np.ndarray) -> Pairs:
    """Every (true, predicted) pair of nuclei that share pixels, with their intersection and IoU."""
    if gt.shape != pred.shape:
        raise ValueError(f"shape mismatch: ground truth {gt.shape} vs prediction {pred.shape}")
    g, _, g_map = relabel_sequential(np.asarray(gt, np.int64))
    p, _, p_map = relabel_sequential(np.asarray(pred, np.int64))
    ng, np_ = int(g.max()), int(p.max())
    area_g = np.bincount(g.ravel(), minlength=ng + 1)[1:]
    area_p = np.bincount(p.ravel(), minlength=np_ + 1)[1:]
    both = (g > 0) & (p > 0)
    keys, inter = np.unique(g[both] * (np_ + 1) + p[both], return_counts=True)
    gi, pi = keys // (np_ + 1) - 1, keys % (np_ + 1) - 1
    union = area_g[gi] + area_p[pi] - inter
    return Pairs(np.asarray(g_map[1:ng + 1]), np.asarray(p_map[1:np_ + 1]), area_g, area_p, gi, pi, inter,
                 inter / np.maximum(union, 1))


def iou_matrix(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """IoU between every ground-truth (rows) and predicted (columns) object, background excluded
    (dense: for small images; the scores use ``overlap_pairs``)."""
    pairs = overlap_pairs(gt, pred)
    iou = np.zeros((len(pairs.area_true), len(pairs.area_pred)))
    iou[pairs.true, pairs.pred] = pairs.iou
    return iou


def aji(gt: np.ndarray, pred: np.ndarray, pairs: Pairs | None = None) -> float:
    """Aggregated Jaccard index (Kumar et al. 2017): each true nucleus is paired with the
    prediction of highest IoU; intersections and unions are summed, and predictions paired with
    no true nucleus add their area to the union."""
    pairs = overlap_pairs(gt, pred) if pairs is None else pairs
    area_g, area_p = pairs.area_true.astype(np.float64), pairs.area_pred.astype(np.float64)
    if len(area_g) == 0:
        return 1.0 if len(area_p) == 0 else 0.0
    if len(area_p) == 0:
        return 0.0
    order = np.lexsort((pairs.pred, -pairs.iou, pairs.true))  # per true nucleus: best IoU, then lowest id
    first = order[np.r_[True, np.diff(pairs.true[order]) != 0]] if len(order) else order
    best_inter = pairs.inter[first].astype(np.float64)
    total_i = best_inter.sum()
    paired = np.zeros(len(area_g), bool)
    paired[pairs.true[first]] = True
    total_u = (area_g[pairs.true[first]] + area_p[pairs.pred[first]] - best_inter).sum() + area_g[~paired].sum()
    used = np.zeros(len(area_p), bool)
    used[pairs.pred[first]] = True
    total_u += area_p[~used].sum()
    return float(total_i / total_u) if total_u else 1.0


def _counts(pairs: Pairs, t: float) -> tuple[int, int, int]:
    tp = int((pairs.iou > t).sum())
    return tp, len(pairs.area_pred) - tp, len(pairs.area_true) - tp


def evaluate_image(gt: np.ndarray, pred: np.ndarray) -> dict:
    """All metrics for one image.

    Returns
    -------
    dict
        ``dsb_score``, ``ap50``, ``f1``, ``pq``, ``semantic_iou``, ``aji``, ``tp``, ``fp``, ``fn``
        (counts at IoU 0.5), ``n_true``, ``n_pred``.
    """
    pairs = overlap_pairs(gt, pred)
    n_true, n_pred = len(pairs.area_true), len(pairs.area_pred)
    scores = []
    for t in DSB_THRESHOLDS:
        tp, fp, fn = _counts(pairs, t)
        denom = tp + fp + fn
        scores.append(tp / denom if denom else 1.0)
    tp, fp, fn = _counts(pairs, 0.5)
    denom = tp + fp + fn
    f1_denom = 2 * tp + fp + fn
    matched = pairs.iou[pairs.iou > 0.5]
    pq_denom = tp + 0.5 * fp + 0.5 * fn
    fg_g, fg_p = gt > 0, pred > 0
    union = np.logical_or(fg_g, fg_p).sum()
    return {
        "dsb_score": float(np.mean(scores)),
        "ap50": tp / denom if denom else 1.0,
        "f1": 2 * tp / f1_denom if f1_denom else 1.0,
        "pq": float(matched.sum() / pq_denom) if pq_denom else 1.0,
        "semantic_iou": float(np.logical_and(fg_g, fg_p).sum() / union) if union else 1.0,
        "aji": aji(gt, pred, pairs),
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "n_true": n_true,
        "n_pred": n_pred,
    }


def summarize(per_image: list[dict]) -> dict:
    """Mean of each score over images (the DSB convention) and summed counts."""
    if not per_image:
        return {}
    out = {}
    for k in ("dsb_score", "ap50", "f1", "pq", "semantic_iou", "aji"):
        if all(k in r for r in per_image):
            out[k] = float(np.mean([r[k] for r in per_image]))
    for k in ("tp", "fp", "fn", "n_true", "n_pred"):
        out[k] = int(sum(r[k] for r in per_image))
    out["n_images"] = len(per_image)
    return out


def match_status(gt: np.ndarray, pred: np.ndarray, t: float = 0.5):
    """Which predicted nuclei are correct (IoU > t with a true nucleus) and which true ones were missed.

    Returns
    -------
    correct_pred : numpy.ndarray of bool, indexed by predicted label (index 0 unused)
    found_true : numpy.ndarray of bool, indexed by true label (index 0 unused)
    """
    gt = np.asarray(gt)
    pred = np.asarray(pred)
    pairs = overlap_pairs(gt, pred)
    hit = pairs.iou > t
    correct = np.zeros(int(pred.max()) + 1, bool)
    found = np.zeros(int(gt.max()) + 1, bool)
    correct[pairs.pred_ids[pairs.pred[hit]]] = True
    found[pairs.true_ids[pairs.true[hit]]] = True
    return correct, found


#: Values of the error map of ``evaluate_labels``.
FALSE_POSITIVE, MISSED, CORRECT = 1, 2, 3


def error_map(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per pixel: CORRECT (a matched predicted nucleus), FALSE_POSITIVE or MISSED (a true nucleus found by none)."""
    correct, found = match_status(gt, pred)
    pred_ok = correct[pred]  # per-pixel: does this predicted nucleus match a true one?
    gt_found = found[gt]
    out = np.zeros(gt.shape, np.uint8)
    out[(pred > 0) & pred_ok] = CORRECT
    out[(gt > 0) & ~gt_found & (out == 0)] = MISSED
    out[(pred > 0) & ~pred_ok] = FALSE_POSITIVE
    return out


def evaluate_labels(gt: np.ndarray, pred: np.ndarray, cancel=None) -> tuple[dict, np.ndarray]:
    """Score ``pred`` against ``gt`` and mark each pixel as correct, false positive or missed.

    Parameters
    ----------
    gt, pred : numpy.ndarray
        Integer instance labels of the same shape: ``(Y, X)``, or ``(Z, Y, X)`` scored
        slice by slice (scores averaged over the slices with a nucleus in either, counts summed).
    cancel : callable, optional
        Checked before each slice; when it returns True, ``errors.Cancelled`` is raised.

    Returns
    -------
    metrics : dict
        ``dsb_score``, ``ap50``, ``f1``, ``pq``, ``semantic_iou``, ``aji``, ``tp``, ``fp``, ``fn``,
        ``n_true``, ``n_pred`` (matching at IoU > 0.5).
    errors : numpy.ndarray
        uint8 map, same shape: 1 false-positive nucleus, 2 missed true nucleus, 3 correct.

    Raises
    ------
    ValueError
        If the shapes differ, the data is not 2D/3D, or either holds values that are not labels
        (fractional, NaN, negative: ``io.images.as_labels``).
    """
    from ..errors import InvalidImageError
    from ..io.images import as_labels

    try:
        gt, pred = as_labels(gt, "ground truth"), as_labels(pred, "prediction")
    except InvalidImageError as exc:
        raise ValueError(str(exc)) from None
    if gt.shape != pred.shape:
        raise ValueError(f"the layers have different shapes: ground truth {gt.shape}, prediction {pred.shape}")
    if gt.ndim == 2:
        return evaluate_image(gt, pred), error_map(gt, pred)
    if gt.ndim == 3:
        per, maps = [], []
        for g, p in zip(gt, pred):
            if cancel is not None and cancel():
                raise Cancelled()
            per.append(evaluate_image(g, p))
            maps.append(error_map(g, p))
        return summarize(_with_nuclei(per)), np.stack(maps)
    raise ValueError(f"expected 2D or 3D label images, got {gt.ndim} dimensions")


def evaluate_planes(gt: np.ndarray, pred: np.ndarray) -> list[dict]:
    """``evaluate_image`` rows of a 2D image (one), or of a ``(Z, Y, X)`` stack slice by slice, as
    ``evaluate_labels`` scores stacks: the slices with a nucleus in either (all when none has one).
    A stack's labels are never matched across slices (ids may restart on each).

    Raises
    ------
    ValueError
        If the shapes differ or the data is not 2D or 3D.
    """
    if np.shape(gt) != np.shape(pred):
        raise ValueError(f"different shapes: ground truth {np.shape(gt)}, prediction {np.shape(pred)}")
    if np.ndim(gt) == 2:
        return [evaluate_image(gt, pred)]
    if np.ndim(gt) == 3:
        return _with_nuclei([evaluate_image(g, p) for g, p in zip(gt, pred)])
    raise ValueError(f"expected 2D or 3D label images, got {np.ndim(gt)} dimensions")


def _with_nuclei(per: list[dict]) -> list[dict]:
    """The slices' rows with a nucleus in either: slices empty in both score 1.0 and would lift the
    means of a stack with few nuclei (all rows when no slice has one)."""
    return [r for r in per if r["n_true"] or r["n_pred"]] or per


def auroc(scores, positive) -> float:
    """Area under the ROC curve (Mann-Whitney U with tie correction); NaN if one class is empty."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, float)
    positive = np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
