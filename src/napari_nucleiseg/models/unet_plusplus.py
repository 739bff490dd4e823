"""U-Net++ (Zhou et al. 2018): nested, densely connected skip pathways between encoder and decoder."""

from __future__ import annotations

import torch
from torch import nn

from .blocks import PaddedModel, double_conv, upsample_to


class UNetPlusPlus(PaddedModel):
    """U-Net++ with depth ``N`` and base filters ``B``; output from the last nested node X(0, N-1).

    Node X(i, j) takes the concatenation of X(i, 0..j-1) and the upsampled X(i+1, j-1).
    """

    def __init__(self, in_channels: int = 1, out_channels: int = 2, base: int = 8, depth: int = 5):
        super().__init__()
        self.stride = 2 ** (depth - 1)
        self.depth = depth
        w = [base * 2**i for i in range(depth)]
        self.pool = nn.MaxPool2d(2)
        self.nodes = nn.ModuleDict()
        for i in range(depth):
            self.nodes[f"{i}_0"] = double_conv(in_channels if i == 0 else w[i - 1], w[i])
        for j in range(1, depth):
            for i in range(depth - j):
                self.nodes[f"{i}_{j}"] = double_conv(w[i] * j + w[i + 1], w[i])
        self.head = nn.Conv2d(w[0], out_channels, 1)

    def forward_padded(self, x):
        X = {}
        for i in range(self.depth):
            X[i, 0] = self.nodes[f"{i}_0"](x if i == 0 else self.pool(X[i - 1, 0]))
        for j in range(1, self.depth):
            for i in range(self.depth - j):
                ins = [X[i, k] for k in range(j)] + [upsample_to(X[i + 1, j - 1], X[i, 0])]
                X[i, j] = self.nodes[f"{i}_{j}"](torch.cat(ins, dim=1))
        return self.head(X[0, self.depth - 1])
