"""A small Mask R-CNN-style detect-then-segment network in plain PyTorch (no torchvision):
boxes, NMS, anchors, RoIAlign, matching, the network and how its masks become labels."""

from .detector import MaskRCNNLite

__all__ = ["MaskRCNNLite"]
