"""Sample data: each opens through napari's sample registry, with ground truth where promised."""

import numpy as np
import pytest

from napari_nucleiseg._napari import samples


@pytest.mark.parametrize("key, image_name, has_truth", [
    ("synthetic_nuclei", "synthetic fluorescence", True),
    ("crowded_nuclei", "crowded field", True),
    ("brightfield_tissue", "immunohistochemistry", False),
])
def test_open_sample(make_napari_viewer, key, image_name, has_truth):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-nucleiseg", key)
    image = viewer.layers[image_name]
    assert type(image).__name__ == "Image" and image.data.size > 0
    names = [la.name for la in viewer.layers]
    if has_truth:
        truth = viewer.layers[f"{image_name} ground truth"]
        assert type(truth).__name__ == "Labels"
        assert truth.data.shape == image.data.shape and truth.data.max() >= 20
    else:
        assert names == [image_name] and image.rgb


def test_samples_are_reproducible_and_crowded_touches():
    from scipy import ndimage as ndi

    a = samples.make_crowded_sample()
    b = samples.make_crowded_sample()
    np.testing.assert_array_equal(a[0][0], b[0][0])
    labels = a[1][0]
    # touching nuclei: some foreground components hold more than one nucleus
    _, n = ndi.label(labels > 0)
    assert n < labels.max()
