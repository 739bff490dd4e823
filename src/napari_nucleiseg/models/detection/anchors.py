"""Anchor boxes over the levels of a feature pyramid."""

from __future__ import annotations

import torch


def cell_anchors(sizes, ratios) -> torch.Tensor:
    """``(len(sizes) * len(ratios), 4)`` anchors centred on 0: for size ``s`` and ratio
    ``r = h / w``, ``w = s / sqrt(r)``, ``h = s * sqrt(r)`` (area ``s**2``)."""
    out = []
    for s in sizes:
        for r in ratios:
            w, h = s / r**0.5, s * r**0.5
            out.append([-w / 2, -h / 2, w / 2, h / 2])
    return torch.tensor(out, dtype=torch.float32)


def grid_anchors(height: int, width: int, stride: int, cells: torch.Tensor) -> torch.Tensor:
    """Anchors of one level ``(height * width * A, 4)``, location-major: the centre of feature
    cell ``(i, j)`` is image point ``((j + 0.5) * stride, (i + 0.5) * stride)``, the centre of the
    pixels it pools (the RoIAlign mapping of ``roi_align``)."""
    ys = (torch.arange(height, dtype=torch.float32) + 0.5) * stride
    xs = (torch.arange(width, dtype=torch.float32) + 0.5) * stride
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    shifts = torch.stack([cx, cy, cx, cy], dim=-1).reshape(-1, 1, 4)
    return (shifts + cells[None]).reshape(-1, 4)


class AnchorGenerator:
    """Anchors for each pyramid level.

    Parameters
    ----------
    strides : sequence of int
        Stride of each level (pixels per feature cell).
    sizes : sequence of sequence of float
        Anchor sizes (square-root of the area, pixels) of each level.
    ratios : sequence of float
        Aspect ratios ``h / w`` used at every level.
    """

    def __init__(self, strides, sizes, ratios=(0.5, 1.0, 2.0)):
        self.strides = tuple(strides)
        self.cells = [cell_anchors(s, ratios) for s in sizes]

    @property
    def per_location(self) -> list[int]:
        """Anchors per feature cell of each level."""
        return [len(c) for c in self.cells]

    def __call__(self, shapes) -> list[torch.Tensor]:
        """Anchors of each level for feature maps of ``shapes`` (``(h, w)`` per level)."""
        return [grid_anchors(h, w, s, c) for (h, w), s, c in zip(shapes, self.strides, self.cells)]
