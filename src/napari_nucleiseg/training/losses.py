"""The papers' losses on (N, C, H, W) logits vs binary targets, summed over channels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _soft_overlap(logits, target, eps=1.0):
    p = torch.sigmoid(logits)
    dims = (0, 2, 3)
    inter = (p * target).sum(dims)
    total = p.sum(dims) + target.sum(dims)
    return inter, total, eps


def soft_dice(logits, target):
    """Per-channel soft Dice coefficient."""
    inter, total, eps = _soft_overlap(logits, target)
    return (2 * inter + eps) / (total + eps)


def soft_jaccard(logits, target):
    """Per-channel soft Jaccard index."""
    inter, total, eps = _soft_overlap(logits, target)
    return (inter + eps) / (total - inter + eps)


def bce(logits, target, weight=None):
    """Per-channel binary cross-entropy, optionally weighted per pixel (U-Net's weight map)."""
    per_pixel = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    if weight is not None:
        per_pixel = per_pixel * weight
    return per_pixel.mean((0, 2, 3))


def bce_dice(logits, target, weight=None):
    """BCE + (1 - Dice): paper 000's loss (the default). ``weight`` scales the BCE per pixel."""
    return (bce(logits, target, weight) + 1 - soft_dice(logits, target)).sum()


def jaccard(logits, target, weight=None):
    """1 - soft Jaccard: paper 001's loss (``weight`` is accepted and unused: no per-pixel term)."""
    return (1 - soft_jaccard(logits, target)).sum()


def bce_log_dice(logits, target, weight=None):
    """BCE - log(Dice): paper 004's loss. ``weight`` scales the BCE per pixel."""
    return (bce(logits, target, weight) - torch.log(soft_dice(logits, target))).sum()


LOSSES = {"bce_dice": bce_dice, "jaccard": jaccard, "bce_log_dice": bce_log_dice}


def get_loss(name: str):
    """Loss function by name (``bce_dice``, ``jaccard``, ``bce_log_dice``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose from {sorted(LOSSES)}") from None
