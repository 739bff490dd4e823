"""RoIAlign (Mask R-CNN) through ``torch.nn.functional.grid_sample``, and the FPN level of a box."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _sample_points(rois: torch.Tensor, size: int, scale: float, ratio: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature-index coordinates ``(K, size * ratio)`` of the x and y sampling points.

    ``aligned=True`` semantics: image point ``p`` is feature index ``p * scale - 0.5``, each of
    the ``size`` bins of a RoI holds ``ratio`` evenly spaced points (at the centres of
    ``ratio`` equal sub-bins).
    """
    steps = (torch.arange(size * ratio, dtype=rois.dtype, device=rois.device) + 0.5) / (size * ratio)
    x1, y1 = rois[:, 0:1] * scale - 0.5, rois[:, 1:2] * scale - 0.5
    w, h = (rois[:, 2:3] - rois[:, 0:1]) * scale, (rois[:, 3:4] - rois[:, 1:2]) * scale
    return x1 + steps * w, y1 + steps * h


def roi_align(features: torch.Tensor, rois: torch.Tensor, batch_index: torch.Tensor, size: int,
              scale: float = 1.0, ratio: int = 2, mode: str = "bilinear") -> torch.Tensor:
    """Pooled features ``(K, C, size, size)`` of ``K`` boxes.

    Parameters
    ----------
    features : torch.Tensor
        ``(B, C, H, W)`` feature maps.
    rois : torch.Tensor
        ``(K, 4)`` boxes ``(x1, y1, x2, y2)`` in image pixels.
    batch_index : torch.Tensor
        ``(K,)`` image of each box.
    size : int
        Output bins per side.
    scale : float
        Feature cells per image pixel (``1 / stride``).
    ratio : int
        Sampling points per bin and side; the bin's value is their mean.
    mode : str
        ``"bilinear"``, or ``"nearest"`` (e.g. to sample a label image).

    Each point is a bilinear sample (``grid_sample`` with ``align_corners=True``: index 0 is the
    centre of the first cell); points outside the map take the value of its edge.
    """
    k, c = len(rois), features.shape[1]
    out = features.new_zeros((k, c, size, size))
    if k == 0:
        return out
    h, w = features.shape[-2:]
    xs, ys = _sample_points(rois.to(features.dtype), size, scale, ratio)
    gx = 2 * xs / max(w - 1, 1) - 1
    gy = 2 * ys / max(h - 1, 1) - 1
    n = size * ratio
    for b in torch.unique(batch_index).tolist():
        sel = torch.nonzero(batch_index == b).flatten()
        grid = torch.stack(torch.broadcast_tensors(gx[sel, None, :], gy[sel, :, None]), dim=-1)
        grid = grid.reshape(1, len(sel) * n, n, 2)
        s = F.grid_sample(features[b:b + 1], grid, mode=mode, padding_mode="border", align_corners=True)
        if ratio > 1:  # each RoI's rows are a multiple of ratio: pooling never mixes two RoIs
            s = F.avg_pool2d(s, ratio)
        out[sel] = s.reshape(c, len(sel), size, size).transpose(0, 1)
    return out


def fpn_level(boxes: torch.Tensor, levels: tuple[int, ...], canonical_size: float = 32.0,
              canonical_level: int = 3) -> torch.Tensor:
    """Position in ``levels`` (pyramid levels, e.g. ``(2, 3, 4)``) of the level each box is pooled
    from: ``canonical_level + log2(sqrt(area) / canonical_size)``, rounded down and clamped
    (the FPN paper's rule, with a canonical size for nuclei rather than ImageNet objects)."""
    side = ((boxes[:, 2] - boxes[:, 0]).clamp(min=1e-6) * (boxes[:, 3] - boxes[:, 1]).clamp(min=1e-6)).sqrt()
    lvl = torch.floor(canonical_level + torch.log2(side / canonical_size + 1e-9))
    return (lvl.clamp(min(levels), max(levels)) - min(levels)).long()


def multilevel_roi_align(features: list[torch.Tensor], strides, boxes: torch.Tensor,
                         batch_index: torch.Tensor, size: int, ratio: int = 2) -> torch.Tensor:
    """``roi_align`` of each box on the pyramid level of ``fpn_level`` (``features`` and
    ``strides`` per level, finest first)."""
    levels = tuple(int(round(math.log2(s))) for s in strides)
    which = fpn_level(boxes, levels)
    out = features[0].new_zeros((len(boxes), features[0].shape[1], size, size))
    for i, (f, s) in enumerate(zip(features, strides)):
        sel = torch.nonzero(which == i).flatten()
        if len(sel):
            out[sel] = roi_align(f, boxes[sel], batch_index[sel], size, 1.0 / s, ratio)
    return out
