"""Plain U-Net (Ronneberger et al. 2015) with batch norm, depth and width configurable."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, double_conv


class UNet(PaddedModel):
    """U-Net: double-conv encoder with max-pooling, transposed-conv decoder, skip concatenation.

    Parameters
    ----------
    in_channels, out_channels : int
    base : int
        Filters at the first level (``B``); level ``n`` has ``B * 2**n``.
    depth : int
        Number of levels (``N``), including the bottleneck.
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base: int = 16, depth: int = 5):
        super().__init__()
        self.stride = 2 ** (depth - 1)
        widths = [base * 2**i for i in range(depth)]
        self.enc = nn.ModuleList()
        cin = in_channels
        for w in widths:
            self.enc.append(double_conv(cin, w))
            cin = w
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w_deep, w in zip(widths[::-1][:-1], widths[::-1][1:]):
            self.up.append(nn.ConvTranspose2d(w_deep, w, 2, stride=2))
            self.dec.append(double_conv(2 * w, w))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward_padded(self, x):
        skips = []
        for i, block in enumerate(self.enc):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        x = skips.pop()
        for up, dec in zip(self.up, self.dec):
            x = dec(torch.cat([up(x), skips.pop()], dim=1))
        return self.head(x)
