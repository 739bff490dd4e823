"""A light residual encoder with a feature pyramid (FPN) on its stride 4, 8 and 16 stages."""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from ..blocks import ResBlock, conv_bn_relu, upsample_to


class PyramidBackbone(nn.Module):
    """Residual encoder (``blocks.ResBlock`` stages) + FPN: ``forward(x)`` gives one
    ``channels``-wide map per stride of ``STRIDES`` (finest first).

    Parameters
    ----------
    in_channels : int
        Input planes.
    base : int
        Width of the stride-2 stem; the stages are 2x, 4x and 8x as wide.
    channels : int
        Width of the pyramid maps.
    """

    STRIDES = (4, 8, 16)

    def __init__(self, in_channels: int = 1, base: int = 16, channels: int = 64):
        super().__init__()
        self.stem = nn.Sequential(conv_bn_relu(in_channels, base, stride=2), conv_bn_relu(base, base))
        widths = [base * 2, base * 4, base * 8]
        stages, cin = [], base
        for w in widths:
            stages.append(nn.Sequential(ResBlock(cin, w, stride=2), ResBlock(w, w)))
            cin = w
        self.stages = nn.ModuleList(stages)
        self.lateral = nn.ModuleList(nn.Conv2d(w, channels, 1) for w in widths)
        self.smooth = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in widths)

    def forward(self, x):
        feats = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        top = self.lateral[-1](feats[-1])
        outs = [self.smooth[-1](top)]
        for i in range(len(feats) - 2, -1, -1):
            top = self.lateral[i](feats[i]) + upsample_to(top, feats[i])
            outs.insert(0, self.smooth[i](top))
        return outs


class RPNHead(nn.Module):
    """Region-proposal head shared by the pyramid levels: objectness logits ``(B, A, h, w)`` and
    box deltas ``(B, 4A, h, w)`` per level."""

    def __init__(self, channels: int, anchors: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.logits = nn.Conv2d(channels, anchors, 1)
        self.deltas = nn.Conv2d(channels, 4 * anchors, 1)
        for layer in (self.logits, self.deltas):
            nn.init.normal_(layer.weight, std=0.01)
            nn.init.zeros_(layer.bias)

    def forward(self, feats):
        out = []
        for f in feats:
            t = F.relu(self.conv(f))
            out.append((self.logits(t), self.deltas(t)))
        return out


class BoxHead(nn.Module):
    """Two fully connected layers on pooled ``(K, C, pool, pool)`` features, then one nucleus
    logit and class-agnostic box deltas per RoI."""

    def __init__(self, channels: int, pool: int = 7, hidden: int = 256):
        super().__init__()
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(channels * pool * pool, hidden), nn.ReLU(inplace=True),
                                nn.Linear(hidden, hidden), nn.ReLU(inplace=True))
        self.logit = nn.Linear(hidden, 1)
        self.deltas = nn.Linear(hidden, 4)
        nn.init.normal_(self.deltas.weight, std=0.001)
        nn.init.zeros_(self.deltas.bias)

    def forward(self, x):
        t = self.fc(x)
        return self.logit(t)[:, 0], self.deltas(t)


class MaskHead(nn.Module):
    """Mask R-CNN's mask branch: ``convs`` convolutions (Mask R-CNN: 4) on ``(K, C, 14, 14)`` pooled features, a 2x
    transposed convolution, one mask logit map ``(K, 28, 28)`` per RoI."""

    def __init__(self, channels: int, convs: int = 2):
        super().__init__()
        layers = []
        for _ in range(convs):
            layers += [nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.up = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.out = nn.Conv2d(channels, 1, 1)

    def forward(self, x):
        return self.out(F.relu(self.up(self.body(x))))[:, 0]
