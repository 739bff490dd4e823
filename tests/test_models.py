import pytest
import torch

from napari_nucleiseg.models import ARCHITECTURES, build

CONFIGS = {
    "unet": dict(base=4, depth=4),
    "residual_unet": dict(base=4, depth=3),
    "resnet_unet": dict(base=4, resnet_depth=18),
    "unet_plus": dict(base=4, depth=4),
    "unet_plusplus": dict(base=4, depth=4),
}


def test_every_architecture_is_tested():
    assert set(CONFIGS) == set(ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (101, 30)])
def test_full_resolution_output_for_odd_sizes(name, shape):
    model = build(name, **CONFIGS[name]).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 1, *shape))
    assert y.shape == (2, 2, *shape)
    assert torch.isfinite(y).all()


def test_resnet_bottleneck_depths_build():
    m = build("resnet_unet", base=4, resnet_depth=50).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 1, 40, 40)).shape == (1, 2, 40, 40)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build("vgg")
