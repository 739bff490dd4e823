"""U-Net+ (paper 004: unet-plus-lightweight): a U-Net whose encoder is densely connected across depths.

Level ``n`` of the encoder does not only see level ``n-1``: every shallower level is
brought down to its resolution by stride-2 conv blocks, and the level's conv block
takes the concatenation of all of them (C10 C11 C12 D13 D23 ... in the paper's Fig. 5a).
Downsampling is a stride-2 conv (no pooling); the decoder is the U-Net decoder with
transposed convs. Filters at level ``n`` are ``B * 2**n``.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, conv_bn_relu, double_conv


class UNetPlus(PaddedModel):
    """U-Net+ with depth ``N`` and base filters ``B`` (paper: N=5, B=8 or 16)."""

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base: int = 8, depth: int = 5):
        super().__init__()
        self.stride = 2 ** (depth - 1)
        self.depth = depth
        widths = [base * 2**i for i in range(depth)]
        self.levels = nn.ModuleList([double_conv(in_channels, widths[0])])
        # down[src][k]: stride-2 conv block taking level src's feature k levels deeper
        self.down = nn.ModuleList()
        for src in range(depth - 1):
            chain = nn.ModuleList()
            cin = widths[src]
            for dst in range(src + 1, depth):
                chain.append(conv_bn_relu(cin, widths[dst], stride=2))
                cin = widths[dst]
            self.down.append(chain)
        for dst in range(1, depth):
            self.levels.append(double_conv(widths[dst] * dst, widths[dst]))
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w_deep, w in zip(widths[::-1][:-1], widths[::-1][1:]):
            self.up.append(nn.ConvTranspose2d(w_deep, w, 2, stride=2))
            self.dec.append(double_conv(2 * w, w))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward_padded(self, x):
        feats = [self.levels[0](x)]
        # carried[src] is level src's feature after the downsamplings done so far
        carried = {0: feats[0]}
        for dst in range(1, self.depth):
            inputs = []
            for src in range(dst):
                step = dst - src - 1
                carried[src] = self.down[src][step](carried[src])
                inputs.append(carried[src])
            feats.append(self.levels[dst](torch.cat(inputs, dim=1)))
            carried[dst] = feats[dst]
        y = feats[-1]
        for i, (up, dec) in enumerate(zip(self.up, self.dec)):
            y = dec(torch.cat([up(y), feats[-2 - i]], dim=1))
        return self.head(y)
