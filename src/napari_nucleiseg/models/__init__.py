"""Model zoo architectures; ``build(name, **cfg)`` makes any of them.

Every model maps a ``(N, C, H, W)`` float image (C = ``in_channels``, 1 or 2) to ``(N, K, H, W)``
logits at full resolution: channel 0 nucleus foreground, channel 1 nucleus border and, with
``out_channels=3``, channel 2 the distance to the nucleus outline.
"""

from .registry import ARCHITECTURES, build, checked_build

__all__ = ["ARCHITECTURES", "build", "checked_build"]
