"""Second stage: box and mask targets of sampled proposals, their losses, and detections."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .boxes import clip, decode, encode, keep_large
from .matcher import match, sample
from .nms import nms
from .roi_align import roi_align

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)
MASK_SIZE = 28


def sample_rois(proposals: list[torch.Tensor], gt_boxes: list[torch.Tensor], per_image: int,
                positive_fraction: float, generator=None):
    """Sampled RoIs of a batch: boxes ``(K, 4)``, their image ``(K,)`` and matched ground-truth
    index ``(K,)`` (-1: background). Ground-truth boxes join the proposals (as in Mask R-CNN)."""
    boxes, image, matched = [], [], []
    for i, (p, gt) in enumerate(zip(proposals, gt_boxes)):
        p = torch.cat([p, gt])
        m = match(gt, p, 0.5, 0.5)
        pos, neg = sample(m, per_image, positive_fraction, generator)
        idx = torch.cat([pos, neg])
        boxes.append(p[idx])
        image.append(torch.full((len(idx),), i, dtype=torch.long, device=p.device))
        matched.append(torch.cat([m[pos], torch.full((len(neg),), -1, dtype=torch.long, device=p.device)]))
    return torch.cat(boxes), torch.cat(image), torch.cat(matched)


def box_loss(logits, deltas, rois, image, matched, gt_boxes) -> tuple[torch.Tensor, torch.Tensor]:
    """Nucleus/background cross-entropy and smooth-L1 box loss (positives only), both over the
    number of sampled RoIs."""
    pos = torch.nonzero(matched >= 0).flatten()
    cls = F.binary_cross_entropy_with_logits(logits.float(), (matched >= 0).float())
    if len(pos) == 0:
        return cls, deltas.sum() * 0
    gt = torch.stack([gt_boxes[int(image[j])][int(matched[j])] for j in pos.tolist()])
    t = encode(rois[pos], gt, BOX_WEIGHTS)
    reg = F.smooth_l1_loss(deltas[pos].float(), t, beta=1 / 9, reduction="sum") / max(len(matched), 1)
    return cls, reg


def mask_targets(rois, image, matched, labels: list[torch.Tensor], ids: list[torch.Tensor]) -> torch.Tensor:
    """``(K, 28, 28)`` binary targets: whether the centre of each of the 28 x 28 bins of a RoI
    lies in the RoI's matched nucleus (``labels``: the label image of each image, ``ids``: the
    label of each ground-truth box)."""
    target = torch.zeros((len(rois), MASK_SIZE, MASK_SIZE), device=rois.device)
    for i, (lab, idx) in enumerate(zip(labels, ids)):
        sel = torch.nonzero(image == i).flatten()
        if len(sel):
            zero = torch.zeros(len(sel), dtype=torch.long, device=rois.device)
            t = roi_align(lab[None, None].float(), rois[sel], zero, MASK_SIZE, 1.0, 1, mode="nearest")
            target[sel] = (t[:, 0] == idx[matched[sel]].float()[:, None, None]).float()
    return target


def mask_loss(mask_logits, target) -> torch.Tensor:
    """Per-pixel binary cross-entropy of the mask logits ``(K, 28, 28)``."""
    if len(target) == 0:
        return mask_logits.sum() * 0
    return F.binary_cross_entropy_with_logits(mask_logits.float(), target)


def detections(logits, deltas, rois, image, n_images: int, size: tuple[int, int], score_threshold: float,
               nms_threshold: float, max_detections: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Final ``(boxes, scores)`` of each image: decoded, clipped, above ``score_threshold``,
    NMS, at most ``max_detections``, highest score first."""
    scores = torch.sigmoid(logits.float())
    boxes = clip(decode(rois, deltas.float(), BOX_WEIGHTS), *size)
    out = []
    for i in range(n_images):
        sel = torch.nonzero((image == i) & (scores >= score_threshold)).flatten()
        b, s = boxes[sel], scores[sel]
        keep = keep_large(b, 1.0)
        b, s = b[keep], s[keep]
        keep = nms(b, s, nms_threshold)[:max_detections]
        out.append((b[keep], s[keep]))
    return out
