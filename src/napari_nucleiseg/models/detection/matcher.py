"""Matching anchors or proposals to ground-truth boxes, and balanced sampling of the matches."""

from __future__ import annotations

import torch

from .boxes import box_iou

BACKGROUND, IGNORE = -1, -2


def match(gt: torch.Tensor, boxes: torch.Tensor, high: float, low: float,
          low_quality: bool = False) -> torch.Tensor:
    """Index of the ground-truth box each box is matched to: ``>= 0`` when its best IoU is at
    least ``high``, ``BACKGROUND`` below ``low``, ``IGNORE`` in between.

    ``low_quality`` also matches, for each ground-truth box, the boxes that overlap it most
    (ties included) even below ``high``, so that every nucleus has an anchor (Faster R-CNN's RPN).
    """
    if len(gt) == 0:
        return torch.full((len(boxes),), BACKGROUND, dtype=torch.long, device=boxes.device)
    iou = box_iou(gt, boxes)
    best, idx = iou.max(dim=0)
    out = idx.clone()
    out[best < high] = IGNORE
    out[best < low] = BACKGROUND
    if low_quality:
        top = iou.max(dim=1, keepdim=True).values
        gi, bi = torch.nonzero((iou == top) & (top > 0), as_tuple=True)
        out[bi] = idx[bi]
    return out


def sample(matches: torch.Tensor, count: int, positive_fraction: float,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random positive (matched) and negative (``BACKGROUND``) indices: at most
    ``count * positive_fraction`` positives, negatives filling the rest of ``count``."""
    pos = torch.nonzero(matches >= 0).flatten()
    neg = torch.nonzero(matches == BACKGROUND).flatten()
    n_pos = min(len(pos), int(count * positive_fraction))
    n_neg = min(len(neg), count - n_pos)
    pos = pos[torch.randperm(len(pos), generator=generator)[:n_pos].to(pos.device)]
    neg = neg[torch.randperm(len(neg), generator=generator)[:n_neg].to(neg.device)]
    return pos, neg
