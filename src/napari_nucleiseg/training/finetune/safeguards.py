"""What keeps a fine-tuned model close to its base: frozen batch-norm, the anchor pull and weight blending."""

from __future__ import annotations

import torch


class FrozenBatchNorm:
    """Keep every batch-norm layer in eval mode (running statistics frozen) during training."""

    def __init__(self, model: torch.nn.Module):
        self.handles = [
            m.register_forward_pre_hook(lambda mod, _inp: setattr(mod, "training", False))
            for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]

    def remove(self) -> None:
        """Let batch-norm layers follow ``train()``/``eval()`` again."""
        for h in self.handles:
            h.remove()
        self.handles = []


def pull_towards(model: torch.nn.Module, anchor_weights: list, fraction: float) -> None:
    """Move every parameter of ``model`` ``fraction`` of the way back to ``anchor_weights`` (in place)."""
    with torch.no_grad():
        for p, p0 in zip(model.parameters(), anchor_weights):
            p.sub_(p - p0, alpha=fraction)


def blend_states(base: dict, tuned: dict, blend: float) -> dict:
    """``base + blend * (tuned - base)`` for every floating-point tensor of two state dicts
    (weight-space ensembling); other tensors (batch-norm counters) are taken from ``tuned``."""
    return {k: base[k] + blend * (v - base[k]) if v.is_floating_point() else v for k, v in tuned.items()}
