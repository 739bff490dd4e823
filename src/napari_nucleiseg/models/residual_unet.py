"""Residual U-Net of paper 000 (residual-unet-bce-dice), with a full-resolution output.

7x7 stem + max-pool, an encoder of residual blocks that downsample with stride-2 3x3
convs (B, 2B, 4B, 8B), a decoder of transposed convs + skip concatenation + residual
blocks. The paper stops at half resolution; a last transposed conv joined with the
full-resolution stem features brings the output to the input size.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, ResBlock, conv_bn_relu


class ResidualUNet(PaddedModel):
    """Residual U-Net with strided-conv encoder and transposed-conv decoder.

    Parameters
    ----------
    base : int
        Filters of the stem and first encoder stage.
    depth : int
        Number of encoder stages (each halves the resolution after the stem's pooling).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base: int = 16, depth: int = 4):
        super().__init__()
        self.stride = 2 ** (depth + 1)
        self.full = conv_bn_relu(in_channels, base // 2)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, base, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(base),
            nn.ReLU(inplace=True),
        )
        widths = [base * 2**i for i in range(depth)]
        self.enc = nn.ModuleList()
        cin = base
        for w in widths:
            self.enc.append(nn.Sequential(ResBlock(cin, w, stride=2), ResBlock(w, w)))
            cin = w
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        skip_widths = [base] + widths[:-1]
        for w_deep, w_skip in zip(widths[::-1], skip_widths[::-1]):
            self.up.append(nn.ConvTranspose2d(w_deep, w_skip, 2, stride=2))
            self.dec.append(ResBlock(2 * w_skip, w_skip))
        self.up_full = nn.ConvTranspose2d(base, base // 2, 2, stride=2)
        self.dec_full = ResBlock(base, base // 2)
        self.head = nn.Conv2d(base // 2, out_channels, 1)

    def forward_padded(self, x):
        full = self.full(x)
        s = self.stem(x)  # 1/2
        skips = [s]
        y = s
        for stage in self.enc:
            y = stage(y)
            skips.append(y)
        skips.pop()
        for up, dec in zip(self.up, self.dec):
            y = dec(torch.cat([up(y), skips.pop()], dim=1))
        y = self.dec_full(torch.cat([self.up_full(y), full], dim=1))
        return self.head(y)
