"""U-Net with a ResNet encoder (paper 001: resnet-unet-watershed-dsb), depth configurable.

The encoder is a ResNet (basic blocks for 18/34, bottlenecks for 50/101/152) trained
from scratch (no ImageNet weights offline); the decoder is the classic U-Net decoder.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Bottleneck, PaddedModel, ResBlock, conv_bn_relu, double_conv

RESNET_LAYERS = {
    18: ("basic", [2, 2, 2, 2]),
    34: ("basic", [3, 4, 6, 3]),
    50: ("bottleneck", [3, 4, 6, 3]),
    101: ("bottleneck", [3, 4, 23, 3]),
    152: ("bottleneck", [3, 8, 36, 3]),
}


class ResNetUNet(PaddedModel):
    """U-Net whose encoder is ResNet-``resnet_depth`` with ``base`` stem filters.

    Parameters
    ----------
    resnet_depth : int
        18, 34, 50, 101 or 152.
    base : int
        Width of the stem; stage ``i`` has ``base * 2**i`` (x4 for bottlenecks).
    """

    def __init__(
        self, in_channels: int = 1, out_channels: int = 2, base: int = 16, resnet_depth: int = 18
    ):
        super().__init__()
        if resnet_depth not in RESNET_LAYERS:
            raise ValueError(f"resnet_depth must be one of {sorted(RESNET_LAYERS)}")
        kind, counts = RESNET_LAYERS[resnet_depth]
        self.full = conv_bn_relu(in_channels, base // 2)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(base),
            nn.ReLU(inplace=True),
        )
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stages = nn.ModuleList()
        widths = []
        cin = base
        for i, n in enumerate(counts):
            width = base * 2**i
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                if kind == "basic":
                    blocks.append(ResBlock(cin, width, stride if j == 0 else 1))
                    cin = width
                else:
                    blocks.append(Bottleneck(cin, width, stride if j == 0 else 1))
                    cin = width * Bottleneck.expansion
            self.stages.append(nn.Sequential(*blocks))
            widths.append(cin)
        # resolutions: stem 1/2, stages 1/4, 1/8, 1/16, 1/32
        skip_widths = [base] + widths[:-1]
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        cdeep = widths[-1]
        for w_skip in skip_widths[::-1]:
            w = max(w_skip, base)
            self.up.append(nn.ConvTranspose2d(cdeep, w, 2, stride=2))
            self.dec.append(double_conv(w + w_skip, w))
            cdeep = w
        self.up_full = nn.ConvTranspose2d(cdeep, base // 2, 2, stride=2)
        self.dec_full = double_conv(base, base // 2)
        self.head = nn.Conv2d(base // 2, out_channels, 1)

    def forward_padded(self, x):
        full = self.full(x)
        s = self.stem(x)
        skips = [s]
        y = self.pool(s)
        for stage in self.stages:
            y = stage(y)
            skips.append(y)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            y = dec(torch.cat([up(y), skips.pop()], dim=1))
        y = self.dec_full(torch.cat([self.up_full(y), full], dim=1))
        return self.head(y)
