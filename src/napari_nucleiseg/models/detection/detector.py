"""``MaskRCNNLite``: a small Mask R-CNN for nuclei (residual encoder + FPN, RPN, box and mask heads)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .anchors import AnchorGenerator
from .backbone import BoxHead, MaskHead, PyramidBackbone, RPNHead
from .proposals import proposals, rpn_loss
from .roi_align import multilevel_roi_align
from .roi_heads import box_loss, detections, mask_loss, mask_targets, sample_rois

#: anchor sizes (pixels) per pyramid level: nuclei of 6-90 pixels, most near the zoo's 20 px target
ANCHOR_SIZES = ((8.0, 12.0), (18.0, 27.0), (40.0, 60.0))
PIXELS_PER_PROPOSAL = 256


class MaskRCNNLite(nn.Module):
    """Detect-then-segment network: boxes with scores, and a 28 x 28 soft mask per box.

    Parameters
    ----------
    in_channels : int
        Input planes (``preprocess.prepare_channels``).
    base, channels : int
        Encoder stem width and pyramid width (``backbone.PyramidBackbone``).
    anchor_sizes : sequence of (float, ...)
        Anchor sizes of each pyramid level (strides 4, 8, 16), with aspect ratios 1:2, 1:1, 2:1.
    max_detections : int
        Detections kept per image (one image may hold several hundred nuclei).
    score_threshold, nms_threshold : float
        Lowest score of a detection (masks are only computed for these; ``segment()``'s
        ``threshold`` then keeps the nuclei scored at least that), and the box IoU above which
        the lower-scored of two detections is dropped.

    ``forward(images)`` in eval mode returns per image a dict ``boxes`` ``(K, 4)`` (x1, y1, x2, y2
    pixels), ``scores`` ``(K,)``, ``masks`` ``(K, 28, 28)`` probabilities within the boxes;
    ``forward(images, targets)`` in training mode (targets: per image ``boxes`` ``(N, 4)``, their
    ``ids`` ``(N,)`` in ``labels``, the ``(H, W)`` label image; ``boxes.targets_from_labels``)
    returns the five losses.
    """

    #: what ``evaluation.evaluate.predict_instances`` and ``inference.detect`` look for
    outputs_instances = True

    def __init__(self, in_channels: int = 1, base: int = 16, channels: int = 64,
                 anchor_sizes=ANCHOR_SIZES, max_detections: int = 1000, score_threshold: float = 0.2,
                 nms_threshold: float = 0.5):
        super().__init__()
        self.backbone = PyramidBackbone(in_channels, base, channels)
        self.strides = PyramidBackbone.STRIDES
        self.anchors = AnchorGenerator(self.strides, anchor_sizes)
        self.rpn = RPNHead(channels, self.anchors.per_location[0])
        self.box_head = BoxHead(channels)
        self.mask_head = MaskHead(channels)
        self.max_detections = max_detections
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.generator = torch.Generator().manual_seed(0)
        # proposals per image after NMS: one per PIXELS_PER_PROPOSAL pixels, within these bounds
        # (a 1024 x 1024 tile may hold several hundred nuclei); before NMS twice as many per level
        self.proposal_bounds = (300, 2000)

    def forward(self, images: torch.Tensor, targets: list[dict] | None = None):
        h, w = images.shape[-2:]
        pad = self.strides[-1]
        ph, pw = (-h) % pad, (-w) % pad
        x = F.pad(images, (0, pw, 0, ph), mode="replicate") if ph or pw else images
        feats = self.backbone(x)
        head = self.rpn(feats)
        anchors = [a.to(images.device) for a in self.anchors([f.shape[-2:] for f in feats])]
        feats = [f.float().contiguous() for f in feats]  # grid_sample is slow on channels_last maps
        lo, hi = self.proposal_bounds
        n = int(min(max(h * w / PIXELS_PER_PROPOSAL, lo), hi))
        props = proposals(anchors, head, (h, w), 2 * n, n)
        if self.training:
            if targets is None:
                raise ValueError("MaskRCNNLite in training mode needs targets")
            return self._losses(feats, anchors, head, props, targets)
        return self._detect(feats, props, (h, w), len(images))

    def _losses(self, feats, anchors, head, props, targets) -> dict:
        gt = [t["boxes"].float() for t in targets]
        obj, rpn_box = rpn_loss(anchors, head, gt, generator=self.generator)
        rois, image, matched = sample_rois(props, gt, 128, 0.5, self.generator)
        pooled = multilevel_roi_align(feats, self.strides, rois, image, 7)
        logits, deltas = self.box_head(pooled)
        cls, box = box_loss(logits, deltas, rois, image, matched, gt)
        pos = torch.nonzero(matched >= 0).flatten()[:128]
        pooled = multilevel_roi_align(feats, self.strides, rois[pos], image[pos], 14)
        target = mask_targets(rois[pos], image[pos], matched[pos], [t["labels"] for t in targets],
                              [t["ids"] for t in targets])
        masks = mask_loss(self.mask_head(pooled), target.to(pooled.device))
        return {"rpn_objectness": obj, "rpn_box": rpn_box, "classifier": cls, "box": box, "mask": masks}

    def _detect(self, feats, props, size, n_images: int) -> list[dict]:
        rois = torch.cat(props)
        image = torch.cat([torch.full((len(p),), i, dtype=torch.long, device=rois.device) for i, p in enumerate(props)])
        pooled = multilevel_roi_align(feats, self.strides, rois, image, 7)
        logits, deltas = self.box_head(pooled)
        dets = detections(logits, deltas, rois, image, n_images, size, self.score_threshold,
                          self.nms_threshold, self.max_detections)
        out = []
        for i, (boxes, scores) in enumerate(dets):
            idx = torch.full((len(boxes),), i, dtype=torch.long, device=boxes.device)
            pooled = multilevel_roi_align(feats, self.strides, boxes, idx, 14)
            masks = torch.sigmoid(self.mask_head(pooled).float()) if len(boxes) else pooled.new_zeros((0, 28, 28))
            out.append({"boxes": boxes, "scores": scores, "masks": masks})
        return out
