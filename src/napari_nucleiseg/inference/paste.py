"""Detections to a label image: soft masks pasted into their boxes, higher scores first."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: a detection whose free pixels are fewer than this share of its mask is a duplicate of better ones
MIN_FREE = 0.5


def mask_in_box(mask: np.ndarray, box, shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray]:
    """A box-relative soft mask ``(m, m)`` sampled at the pixels its box covers: the slices of
    those pixels in an image of ``shape`` and the ``(h, w)`` probabilities (bilinear; pixel
    ``(r, c)`` has centre ``(r + 0.5, c + 0.5)``, mask cell ``j`` centre ``x1 + (j + 0.5) / m * w``)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    r0, r1 = max(0, math.floor(y1)), min(shape[0], math.ceil(y2))
    c0, c1 = max(0, math.floor(x1)), min(shape[1], math.ceil(x2))
    if r1 <= r0 or c1 <= c0 or x2 <= x1 or y2 <= y1:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0), np.float32)
    gy = 2 * (np.arange(r0, r1, dtype=np.float32) + 0.5 - y1) / (y2 - y1) - 1
    gx = 2 * (np.arange(c0, c1, dtype=np.float32) + 0.5 - x1) / (x2 - x1) - 1
    grid = torch.from_numpy(np.stack(np.broadcast_arrays(gx[None, :], gy[:, None]), axis=-1))[None]
    m = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.float32))[None, None]
    soft = F.grid_sample(m, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return (slice(r0, r1), slice(c0, c1)), soft[0, 0].numpy()


def paste(boxes: np.ndarray, scores: np.ndarray, masks: np.ndarray, shape: tuple[int, int],
          threshold: float = 0.5, min_size: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels, union of soft masks and score per label of detections.

    Parameters
    ----------
    boxes, scores, masks : numpy.ndarray
        ``(K, 4)``, ``(K,)``, ``(K, m, m)`` (``inference.detect.Detections``).
    shape : (int, int)
        The image's ``(Y, X)``.
    threshold : float
        Lowest score of a nucleus.
    min_size : int
        Fewest pixels of a nucleus.

    Returns
    -------
    labels : numpy.ndarray
        int32 ``(Y, X)``, ids 1.. in order of falling score. Where masks overlap, the higher
        score wins; a detection left with fewer than ``MIN_FREE`` of its pixels (a duplicate) or
        fewer than ``min_size`` is dropped.
    probability : numpy.ndarray
        float32 ``(Y, X)``: the highest soft-mask value of any kept-score detection at each pixel.
    label_scores : numpy.ndarray
        float32 ``(n + 1,)``: the score of each label (index 0, the background: 0).
    """
    labels = np.zeros(shape, np.int32)
    prob = np.zeros(shape, np.float32)
    kept = [0.0]
    for k in np.argsort(-scores, kind="stable"):
        if scores[k] < threshold:
            break
        where, soft = mask_in_box(masks[k], boxes[k], shape)
        if soft.size == 0:
            continue
        np.maximum(prob[where], soft, out=prob[where])
        inside = soft >= 0.5
        free = inside & (labels[where] == 0)
        n = int(free.sum())
        if n == 0 or n < min_size or n < MIN_FREE * inside.sum():
            continue
        labels[where][free] = len(kept)
        kept.append(float(scores[k]))
    return labels, prob, np.asarray(kept, np.float32)
