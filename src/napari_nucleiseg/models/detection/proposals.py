"""Region proposals from the RPN's outputs, and the RPN's training loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .boxes import clip, decode, encode, keep_large
from .matcher import match, sample
from .nms import nms


def flatten_level(logits: torch.Tensor, deltas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, A, h, w)`` logits and ``(B, 4A, h, w)`` deltas as ``(B, h*w*A)`` and ``(B, h*w*A, 4)``,
    location-major like ``anchors.grid_anchors``."""
    b, a, h, w = logits.shape
    lg = logits.permute(0, 2, 3, 1).reshape(b, -1)
    dl = deltas.reshape(b, a, 4, h, w).permute(0, 3, 4, 1, 2).reshape(b, -1, 4)
    return lg, dl


def proposals(anchors: list[torch.Tensor], head: list, size: tuple[int, int], pre_nms: int,
              post_nms: int, nms_threshold: float = 0.7, min_side: float = 1.0) -> list[torch.Tensor]:
    """Proposal boxes of each image: per level the ``pre_nms`` best anchors, decoded and clipped
    to ``size``, small ones dropped, NMS within each level, the ``post_nms`` best overall."""
    flat = [flatten_level(lg.detach().float(), dl.detach().float()) for lg, dl in head]
    out = []
    for i in range(flat[0][0].shape[0]):
        boxes, scores = [], []
        for anc, (lg, dl) in zip(anchors, flat):
            s, idx = lg[i].topk(min(pre_nms, lg.shape[1]))
            b = clip(decode(anc[idx], dl[i, idx]), *size)
            keep = keep_large(b, min_side)
            keep = keep[nms(b[keep], s[keep], nms_threshold)]
            boxes.append(b[keep])
            scores.append(s[keep])
        boxes, scores = torch.cat(boxes), torch.cat(scores)
        out.append(boxes[scores.argsort(descending=True)[:post_nms]])
    return out


def rpn_loss(anchors: list[torch.Tensor], head: list, gt_boxes: list[torch.Tensor],
             per_image: int = 256, positive_fraction: float = 0.5,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Objectness (binary cross-entropy) and box (smooth L1) losses of the RPN on a balanced
    sample of anchors per image (IoU >= 0.7 or best for a nucleus: positive, < 0.3: negative)."""
    all_anchors = torch.cat(anchors)
    flat = [flatten_level(lg.float(), dl.float()) for lg, dl in head]
    logits = torch.cat([f[0] for f in flat], dim=1)
    deltas = torch.cat([f[1] for f in flat], dim=1)
    obj, box, n = [], [], 0
    for i, gt in enumerate(gt_boxes):
        m = match(gt, all_anchors, 0.7, 0.3, low_quality=True)
        pos, neg = sample(m, per_image, positive_fraction, generator)
        idx = torch.cat([pos, neg])
        target = torch.cat([torch.ones(len(pos)), torch.zeros(len(neg))]).to(logits.device)
        obj.append(F.binary_cross_entropy_with_logits(logits[i, idx], target, reduction="sum"))
        if len(pos):
            t = encode(all_anchors[pos], gt[m[pos]])
            box.append(F.smooth_l1_loss(deltas[i, pos], t, beta=1 / 9, reduction="sum"))
        n += len(idx)
    n = max(n, 1)
    zero = logits.sum() * 0
    return sum(obj, zero) / n, sum(box, zero) / n
