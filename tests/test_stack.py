"""Stacks: the planes of a (Z, Y, X) array segmented one at a time."""

import numpy as np

from napari_nucleiseg.inference.stack import segment_any
from napari_nucleiseg.synthetic import synthetic_nuclei


def test_plane_column_names_the_stack_plane():
    stack = np.stack([synthetic_nuclei((64, 64), n_nuclei=4, seed=s)[0] for s in range(4)])
    seg = segment_any(stack, planes=[2, 3])
    assert seg.labels.shape[0] == 2 and set(seg.table["plane"]) == {2, 3}
