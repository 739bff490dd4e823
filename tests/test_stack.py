"""Stacks: the planes of a (Z, Y, X) array segmented one at a time."""

import numpy as np

from napari_nucleiseg.inference.stack import segment_any
from napari_nucleiseg.synthetic import synthetic_nuclei


def test_plane_column_names_the_stack_plane():
    stack = np.stack([synthetic_nuclei((64, 64), n_nuclei=4, seed=s)[0] for s in range(4)])
    seg = segment_any(stack, planes=[2, 3])
    assert seg.labels.shape[0] == 2 and set(seg.table["plane"]) == {2, 3}


def test_planes_and_odd_shapes_are_checked_in_one_line():
    import pytest

    from napari_nucleiseg.errors import InvalidImageError, OptionError

    stack = np.stack([synthetic_nuclei((64, 64), n_nuclei=4, seed=s)[0] for s in range(3)])
    for planes, message in (([], "no planes chosen"), ([5], "plane 5 is not in the stack"),
                            ([-1], "plane -1 is not in the stack")):
        with pytest.raises(InvalidImageError, match=message):
            segment_any(stack, planes=planes)
    with pytest.raises(InvalidImageError, match=r"6 channels needs the nucleus channel"):
        segment_any(np.zeros((64, 64, 6), np.uint8))
    grey = stack[0]
    assert segment_any(grey[..., None]).labels.shape == (64, 64)  # (Y, X, 1) is grey
    assert segment_any(grey.tolist()).labels.max() == segment_any(grey).labels.max()
    seg = segment_any(grey, scale=(2.0, 0.5, 0.5))  # a napari stack layer's scale: (z, y, x)
    np.testing.assert_allclose(seg.table["area_physical"], seg.table["area"] * 0.25)
    for bad in ((0.5,), 0.5, (float("nan"), 1.0), (0.0, 1.0)):
        with pytest.raises(OptionError, match="scale"):
            segment_any(grey, scale=bad)


def test_a_stack_of_two_kinds_says_so_per_plane():
    fluo = synthetic_nuclei((96, 96), n_nuclei=6, seed=1)[0]
    bright = synthetic_nuclei((96, 96), n_nuclei=6, seed=2, brightfield=True)[0]
    seg = segment_any(np.stack([fluo, bright.astype(fluo.dtype)]))
    assert seg.settings["image_kind"] == ["fluorescence", "brightfield"]
    assert seg.settings["weights"][0] != seg.settings["weights"][1] and " / " in seg.model
