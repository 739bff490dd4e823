"""Name -> architecture registry."""

from __future__ import annotations

from torch import nn

from .detection import MaskRCNNLite
from .residual_unet import ResidualUNet
from .resnet_unet import ResNetUNet
from .unet import UNet
from .unet_plus import UNetPlus
from .unet_plusplus import UNetPlusPlus

ARCHITECTURES = {
    "unet": UNet,
    "residual_unet": ResidualUNet,
    "resnet_unet": ResNetUNet,
    "unet_plus": UNetPlus,
    "unet_plusplus": UNetPlusPlus,
    "maskrcnn_lite": MaskRCNNLite,
}


def build(name: str, **cfg) -> nn.Module:
    """Build an architecture by name.

    Parameters
    ----------
    name : str
        One of ``ARCHITECTURES``.
    **cfg
        Passed to the constructor (``base``, ``depth``, ``resnet_depth``, ...).
    """
    try:
        cls = ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}") from None
    try:
        return cls(**cfg)
    except TypeError as exc:  # an option the architecture does not take
        raise ValueError(f"architecture {name!r}: {exc}") from None
