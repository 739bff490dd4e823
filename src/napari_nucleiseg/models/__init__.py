"""Model zoo architectures; ``build(name, **cfg)`` makes any of them.

Every model maps a ``(N, 1, H, W)`` float image to ``(N, 2, H, W)`` logits at full
resolution: channel 0 nucleus foreground, channel 1 nucleus border.
"""

from .registry import ARCHITECTURES, build

__all__ = ["ARCHITECTURES", "build"]
