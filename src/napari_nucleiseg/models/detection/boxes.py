"""Boxes ``(x1, y1, x2, y2)`` in continuous pixel coordinates (pixel ``(r, c)`` covers
``[c, c + 1) x [r, r + 1)``): areas, pairwise IoU, the Faster R-CNN delta coding, clipping."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import ndimage as ndi

#: dw, dh above this are clamped before ``exp`` (Faster R-CNN: boxes at most 1000/16 times the anchor)
BBOX_CLAMP = math.log(1000.0 / 16)


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """Area of each of ``(N, 4)`` boxes (0 for empty ones)."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise intersection over union, ``(N, M)`` for ``(N, 4)`` and ``(M, 4)`` boxes."""
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union.clamp(min=1e-9)


def _centres(boxes: torch.Tensor):
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes[:, 0] + 0.5 * w, boxes[:, 1] + 0.5 * h, w, h


def encode(reference: torch.Tensor, boxes: torch.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """Deltas ``(dx, dy, dw, dh)`` that turn ``reference`` boxes into ``boxes`` (both ``(N, 4)``).

    ``dx = wx * (x - xr) / wr``, ``dw = ww * log(w / wr)`` (likewise y, h): the coding of
    Faster R-CNN, with its per-coordinate ``weights``.
    """
    wx, wy, ww, wh = weights
    rx, ry, rw, rh = _centres(reference)
    x, y, w, h = _centres(boxes)
    return torch.stack([wx * (x - rx) / rw, wy * (y - ry) / rh,
                        ww * torch.log(w / rw), wh * torch.log(h / rh)], dim=1)


def decode(reference: torch.Tensor, deltas: torch.Tensor, weights=(1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """Boxes from ``reference`` boxes and ``deltas`` (inverse of ``encode``); dw, dh are clamped
    at ``BBOX_CLAMP`` so that a wild prediction cannot overflow."""
    wx, wy, ww, wh = weights
    rx, ry, rw, rh = _centres(reference)
    dx, dy = deltas[:, 0] / wx, deltas[:, 1] / wy
    dw = (deltas[:, 2] / ww).clamp(max=BBOX_CLAMP)
    dh = (deltas[:, 3] / wh).clamp(max=BBOX_CLAMP)
    x, y = rx + dx * rw, ry + dy * rh
    w, h = rw * torch.exp(dw), rh * torch.exp(dh)
    return torch.stack([x - 0.5 * w, y - 0.5 * h, x + 0.5 * w, y + 0.5 * h], dim=1)


def clip(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Boxes clipped to an image of ``height`` x ``width`` pixels."""
    x = boxes[:, 0::2].clamp(0, width)
    y = boxes[:, 1::2].clamp(0, height)
    return torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], dim=1)


def keep_large(boxes: torch.Tensor, min_side: float) -> torch.Tensor:
    """Indices of the boxes whose width and height are both at least ``min_side``."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return torch.nonzero((w >= min_side) & (h >= min_side)).flatten()


def targets_from_labels(labels, min_area: int = 4) -> dict:
    """Training targets of an instance label image ``(H, W)``: tight ``boxes`` ``(N, 4)`` of the
    nuclei of at least ``min_area`` pixels, their ``ids`` and the int64 ``labels`` image."""
    lab = np.asarray(labels).astype(np.int64)
    slices = ndi.find_objects(lab)
    areas = np.bincount(lab.ravel(), minlength=len(slices) + 1)
    boxes, ids = [], []
    for k, sl in enumerate(slices, start=1):
        if sl is not None and areas[k] >= min_area:
            boxes.append([sl[1].start, sl[0].start, sl[1].stop, sl[0].stop])
            ids.append(k)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "ids": torch.tensor(ids, dtype=torch.long), "labels": torch.from_numpy(lab)}
