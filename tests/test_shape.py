import numpy as np
import pandas as pd
import pytest
from skimage.measure import regionprops_table

from napari_nucleiseg.inference.measure import measure
from napari_nucleiseg.inference.shape import shape_table
from napari_nucleiseg.synthetic import synthetic_nuclei

PROPS = ("label", "area", "centroid", "perimeter", "eccentricity", "solidity")


def odd_shapes():
    lab = np.zeros((40, 50), np.int32)
    lab[0, 0] = 1                      # one pixel in the corner
    lab[5, 3:20] = 2                   # a one-pixel line
    lab[10:20, 10:12] = 3              # an L
    lab[18:20, 10:25] = 3
    lab[30:40, 40:50] = 4              # a square on two image edges
    lab[25, 30], lab[26, 31] = 5, 5    # two pixels touching at a corner
    return lab


def blobs(seed: int) -> np.ndarray:
    """Irregular, concave blobs; pairs of them share a label (nuclei in two pieces)."""
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.random((90, 110)), 1.0 + seed)
    lab, _ = ndi.label(noise > np.quantile(noise, 0.5))
    return (lab + 1) // 2


@pytest.mark.parametrize("which", ["odd", "synthetic", "blobs0", "blobs1", "blobs2"])
def test_shape_table_matches_regionprops(which):
    labels = (odd_shapes() if which == "odd" else blobs(int(which[-1])) if which.startswith("blobs")
              else synthetic_nuclei((160, 200), n_nuclei=40, touching=0.6, seed=4)[1])
    ours = shape_table(labels)
    ref = pd.DataFrame(regionprops_table(labels, properties=PROPS)).rename(
        columns={"centroid-0": "centroid_y", "centroid-1": "centroid_x"})
    assert list(ours["label"]) == list(ref["label"]) and len(ours) > 3
    for col in ("area", "centroid_y", "centroid_x", "perimeter", "eccentricity", "solidity"):
        np.testing.assert_allclose(ours[col], ref[col], rtol=1e-9, atol=1e-9, err_msg=col)


def test_measure_keeps_sparse_label_ids():
    labels = odd_shapes().astype(np.int64)
    labels[labels == 4] = 10**12
    table = measure(labels, np.ones(labels.shape), np.ones(labels.shape), np.zeros(labels.shape))
    assert list(table["label"]) == [1, 2, 3, 5, 10**12]
    assert table.loc[table["label"] == 10**12, "area"].item() == 100


def test_label_means_equal_scipy():
    from scipy import ndimage as ndi

    from napari_nucleiseg.inference.measure import label_means

    labels = blobs(0)
    values = np.random.default_rng(0).random(labels.shape).astype(np.float32) * 1000
    index = np.array([1, 3, labels.max()])
    np.testing.assert_array_equal(label_means(labels, values, index), ndi.mean(values, labels=labels, index=index))


def test_an_image_without_nuclei_has_an_empty_table():
    table = shape_table(np.zeros((6, 7), np.int32))
    assert len(table) == 0 and "solidity" in table.columns
