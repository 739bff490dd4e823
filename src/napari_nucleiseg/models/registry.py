"""Name -> architecture registry."""

from __future__ import annotations

import torch
from torch import nn

from .detection import MaskRCNNLite
from .residual_unet import ResidualUNet
from .resnet_unet import ResNetUNet
from .unet import UNet
from .unet_plus import UNetPlus
from .unet_plusplus import UNetPlusPlus

#: The most weights an architecture may be built with (the zoo's largest has 6 M).
MAX_PARAMETERS = 200_000_000

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
        with torch.device("meta"):  # sized before anything is allocated: a card may ask for gigabytes
            n = sum(p.numel() for p in cls(**cfg).parameters())
        if n > MAX_PARAMETERS:
            raise ValueError(f"{n / 1e6:.0f} M weights, more than the {MAX_PARAMETERS / 1e6:.0f} M a nuclei model "
                             "of this plugin may have")
        return cls(**cfg)
    except TypeError as exc:  # an option the architecture does not take
        raise ValueError(f"architecture {name!r}: {exc}") from None
    except (IndexError, RuntimeError, ValueError, ZeroDivisionError) as exc:  # sizes that cannot be built
        raise ValueError(f"architecture {name!r} with {cfg} cannot be built: {exc}") from None


def checked_build(name: str, **cfg) -> nn.Module:
    """``build``, and for a map architecture one forward pass of a blank 256-pixel image, so that
    options that cannot train (depth 0, too few channels, an output without foreground and border
    maps) are one line before any data is loaded.

    Raises
    ------
    ValueError
        Naming the architecture, its options and what is wrong.
    """
    import torch

    from ..errors import first_line

    model = build(name, **cfg)
    if getattr(model, "outputs_instances", False):  # a detector: its targets are boxes and masks
        return model
    options = f"architecture {name!r} with {cfg}"
    x = torch.zeros(1, int(cfg.get("in_channels", 1)), 256, 256)
    try:
        with torch.no_grad():
            out = model.eval()(x)
    except Exception as exc:  # the constructors accept sizes that cannot run
        raise ValueError(f"{options} cannot run: {first_line(exc)}") from None
    if out.shape[1] not in (2, 3) or out.shape[-2:] != x.shape[-2:]:
        raise ValueError(f"{options} gives {out.shape[1]} output map(s) of {tuple(out.shape[-2:])} pixels; "
                         "training needs 2 (foreground, border) or 3 (and distance) of the input's size")
    return model.train()
