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
#: Instance models (detectors): boxes, scores and masks instead of maps.
INSTANCE_CONFIGS = {"maskrcnn_lite": dict(base=4, channels=16)}


def test_every_architecture_is_tested():
    assert set(CONFIGS) | set(INSTANCE_CONFIGS) == set(ARCHITECTURES)


@pytest.mark.parametrize("name", sorted(INSTANCE_CONFIGS))
@pytest.mark.parametrize("shape", [(37, 53), (101, 30)])
def test_instance_models_detect_inside_odd_sized_images(name, shape):
    model = build(name, **INSTANCE_CONFIGS[name]).eval()
    model.score_threshold = 0.0  # an untrained network: keep every detection
    with torch.no_grad():
        out = model(torch.randn(2, 1, *shape))
    assert len(out) == 2
    for det in out:
        boxes, scores, masks = det["boxes"], det["scores"], det["masks"]
        assert len(boxes) > 0 and boxes.shape == (len(scores), 4) and masks.shape == (len(scores), 28, 28)
        assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= shape[1]).all() and (boxes[:, 3] <= shape[0]).all()
        assert ((scores >= 0) & (scores <= 1)).all() and ((masks >= 0) & (masks <= 1)).all()


@pytest.mark.parametrize("name", sorted(CONFIGS))
@pytest.mark.parametrize("shape", [(37, 53), (64, 64), (101, 30)])
def test_full_resolution_output_for_odd_sizes(name, shape):
    model = build(name, **CONFIGS[name]).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 1, *shape))
    assert y.shape == (2, 2, *shape)
    assert torch.isfinite(y).all()


#: Residual blocks of each ResNet: (depth - 2) / 2 basic blocks or (depth - 2) / 3 bottlenecks.
RESNET_BLOCKS = {18: 8, 34: 16, 50: 16, 101: 33, 152: 50}


@pytest.mark.parametrize("depth", sorted(RESNET_BLOCKS))
def test_every_resnet_depth_builds(depth):
    m = build("resnet_unet", base=4, resnet_depth=depth).eval()
    blocks = [type(block).__name__ for stage in m.stages for block in stage]
    assert len(blocks) == RESNET_BLOCKS[depth]
    assert set(blocks) == {"Bottleneck" if depth >= 50 else "ResBlock"}
    with torch.no_grad():
        assert m(torch.randn(1, 1, 40, 40)).shape == (1, 2, 40, 40)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build("vgg")


def test_a_network_too_large_for_a_nuclei_model_is_refused_before_it_is_allocated():
    with pytest.raises(ValueError, match="1212 M weights, more than the 200 M"):
        build("unet", base=400, depth=5)  # 4.8 GB of float32 weights, from a card or a package
