import pytest
import torch
from torch import nn

from napari_nucleiseg import zoo
from napari_nucleiseg.models import ARCHITECTURES, build
from napari_nucleiseg.models.fold_batchnorm import fold_batchnorm

SMALL = {"unet": {"base": 4, "depth": 3}, "residual_unet": {"base": 8, "depth": 3},
         "resnet_unet": {"base": 8}, "unet_plus": {"base": 4, "depth": 3}, "unet_plusplus": {"base": 4, "depth": 3}}


def _trained_looking(model: nn.Module) -> nn.Module:
    """Batch norms with statistics and affine values far from their initial 0/1 (as after training)."""
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) * 2 + 0.1)
            m.weight.data.copy_(torch.randn(n, generator=gen))
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.3)
    return model.eval()


@pytest.mark.parametrize("arch", sorted(SMALL))
def test_folding_keeps_the_output_and_removes_batch_norms(arch):
    assert arch in ARCHITECTURES
    torch.manual_seed(0)
    model = _trained_looking(build(arch, **SMALL[arch]))
    x = torch.rand(1, 1, 64, 96)
    with torch.inference_mode():
        before = model(x)
        n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
        folded = fold_batchnorm(model)
        after = folded(x)
    assert folded is model
    left = sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert n_bn > 0 and left == 0  # every batch norm of these architectures follows a convolution
    assert torch.allclose(before, after, atol=1e-4, rtol=1e-4)


def test_folding_needs_eval_mode():
    with pytest.raises(ValueError, match="eval"):
        fold_batchnorm(build("unet", base=4, depth=3).train())


def test_a_batch_norm_before_its_convolution_is_left_alone():
    model = nn.Sequential(nn.BatchNorm2d(1), nn.Conv2d(1, 2, 3)).eval()
    fold_batchnorm(model)
    assert isinstance(model[0], nn.BatchNorm2d)


def test_zoo_models_are_loaded_folded_and_the_weights_file_is_not():
    net, entry, _ = zoo.load_model("default", "cpu")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    fresh, _ = zoo.load_weights_file(entry.weights)  # fine-tuning starts from this: trainable
    assert any(isinstance(m, nn.BatchNorm2d) for m in fresh.modules())
