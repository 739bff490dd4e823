"""Greedy non-maximum suppression."""

from __future__ import annotations

import numpy as np
import torch

# boxes whose overlaps are computed at once: memory BLOCK x N
BLOCK = 256


def _iou_rows(a: np.ndarray, b: np.ndarray, area_a: np.ndarray, area_b: np.ndarray) -> np.ndarray:
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Indices of the boxes kept, highest score first: each kept box drops every lower-scored
    box whose IoU with it is above ``iou_threshold`` (greedy, as torchvision's ``nms``).

    The boxes are sorted by score; the overlaps of each block of ``BLOCK`` boxes with the boxes
    after it are computed at once (memory ``BLOCK x N``), then the greedy pass walks the block.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    order = np.argsort(-scores.detach().float().cpu().numpy(), kind="stable")
    b = boxes.detach().float().cpu().numpy()[order]
    area = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    n = len(b)
    removed = np.zeros(n, bool)
    keep = []
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        over = _iou_rows(b[start:stop], b[start:], area[start:stop], area[start:]) > iou_threshold
        for i in range(start, stop):
            if not removed[i]:
                keep.append(i)
                removed[start:] |= over[i - start]
    return torch.as_tensor(order[np.array(keep, np.int64)], device=boxes.device)


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, groups: torch.Tensor,
                iou_threshold: float) -> torch.Tensor:
    """``nms`` within each group (e.g. FPN level or image) only: boxes of different groups never
    suppress each other (they are shifted apart by more than any box extent)."""
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    offset = groups.to(boxes.dtype)[:, None] * (boxes.max() + 1)
    return nms(boxes + offset, scores, iou_threshold)
