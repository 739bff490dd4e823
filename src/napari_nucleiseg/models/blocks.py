"""Layers shared by the architectures."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_bn_relu(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    """3x3 conv (no bias) + batch norm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """The classic U-Net block: two conv-bn-relu."""
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class StridedPointwise(nn.Conv2d):
    """1x1 convolution with a stride, computed as subsampling then a stride-1 1x1 convolution.

    The result equals ``nn.Conv2d(cin, cout, 1, stride=stride)`` and the weights are the same
    tensors. On the CPU, torch 2.13's oneDNN backward of a strided 1x1 convolution with few input
    channels (4 or 8), channels-last and bf16 on two or more threads corrupts the heap (the
    process aborts: "double free or corruption"); subsampling first avoids that kernel.
    """

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__(cin, cout, 1, bias=False)
        self.step = stride

    def forward(self, x):
        return self._conv_forward(x[:, :, :: self.step, :: self.step], self.weight, self.bias)


def _skip(cin: int, cout: int, stride: int) -> nn.Sequential:
    """The projection of a residual block's input: a (strided) 1x1 convolution + batch norm."""
    conv = StridedPointwise(cin, cout, stride) if stride != 1 else nn.Conv2d(cin, cout, 1, bias=False)
    return nn.Sequential(conv, nn.BatchNorm2d(cout))


class ResBlock(nn.Module):
    """Basic residual block (two 3x3 convs), optional stride-2 downsampling."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = _skip(cin, cout, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.skip is None else self.skip(x)), inplace=True)


class Bottleneck(nn.Module):
    """ResNet bottleneck block (1x1, 3x3, 1x1 with 4x expansion)."""

    expansion = 4

    def __init__(self, cin: int, width: int, stride: int = 1):
        super().__init__()
        cout = width * self.expansion
        self.body = nn.Sequential(
            nn.Conv2d(cin, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = None
        if stride != 1 or cin != cout:
            self.skip = _skip(cin, cout, stride)

    def forward(self, x):
        return F.relu(self.body(x) + (x if self.skip is None else self.skip(x)), inplace=True)


class PaddedModel(nn.Module):
    """Base class: pads the input to a multiple of ``self.stride`` and crops the output back."""

    stride = 32

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph = (-h) % self.stride
        pw = (-w) % self.stride
        if ph or pw:
            mode = "reflect" if (ph < h and pw < w) else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        return self.forward_padded(x)[..., :h, :w]

    def forward_padded(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def upsample_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour upsampling of ``x`` to the spatial size of ``ref``."""
    return F.interpolate(x, size=ref.shape[-2:], mode="nearest")
