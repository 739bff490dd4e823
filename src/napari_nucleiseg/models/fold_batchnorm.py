"""Folding batch norm into the convolution before it, for inference.

In eval mode a ``BatchNorm2d`` is a per-channel affine map, so ``bn(conv(x))`` equals one
convolution with rescaled weights and a bias. Folding removes a full pass over every feature
map (about a tenth of a U-Net's CPU time) and gives the same output up to float rounding.
Only pairs whose convolution output reaches nothing but the batch norm are folded: consecutive
layers of an ``nn.Sequential`` and the ``conv1/bn1``, ``conv2/bn2`` pairs of ``ResBlock``.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .blocks import ResBlock, StridedPointwise


def _foldable(conv: nn.Module, bn: nn.Module) -> bool:
    return (type(conv) in (nn.Conv2d, StridedPointwise) and type(bn) is nn.BatchNorm2d and bn.track_running_stats
            and bn.num_features == conv.out_channels)


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """Fold every foldable batch norm of ``model`` (in place) into its convolution.

    Parameters
    ----------
    model : torch.nn.Module
        A model in eval mode; a folded model must not be trained again.

    Returns
    -------
    torch.nn.Module
        ``model`` itself, its folded batch norms replaced by ``nn.Identity``.

    Raises
    ------
    ValueError
        If ``model`` is in training mode (its batch norms then use batch statistics).
    """
    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    for module in list(model.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            for a, b in zip(names, names[1:]):
                conv, bn = module._modules[a], module._modules[b]
                if _foldable(conv, bn):
                    module._modules[a] = fuse_conv_bn_eval(conv, bn)
                    module._modules[b] = nn.Identity()
        elif isinstance(module, ResBlock):
            for conv_name, bn_name in (("conv1", "bn1"), ("conv2", "bn2")):
                conv, bn = getattr(module, conv_name), getattr(module, bn_name)
                if _foldable(conv, bn):
                    setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
                    setattr(module, bn_name, nn.Identity())
    return model
