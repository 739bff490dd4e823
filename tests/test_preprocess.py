import numpy as np
import pytest

from napari_nucleiseg.errors import InvalidImageError
from napari_nucleiseg.preprocess import check_image, looks_brightfield, prepare
from napari_nucleiseg.synthetic import synthetic_nuclei


def test_fluorescence_is_not_inverted_brightfield_is():
    img, lab = synthetic_nuclei((128, 128), n_nuclei=10, seed=0)
    bf, lab_bf = synthetic_nuclei((128, 128), n_nuclei=10, seed=0, brightfield=True)
    assert not looks_brightfield(img.astype(np.float32))
    assert looks_brightfield(bf.astype(np.float32))
    for im, lb in ((img, lab), (bf, lab_bf)):
        x = prepare(im)
        assert x.dtype == np.float32
        assert x[lb > 0].mean() > x[lb == 0].mean() + 0.3  # nuclei come out bright


def test_rgb_and_16bit_inputs_normalise_to_unit_range():
    img, _ = synthetic_nuclei((64, 64), n_nuclei=5, seed=1)
    rgb = np.stack([img // 256] * 3 + [np.full_like(img // 256, 255)], -1).astype(np.uint8)
    for im in (img, rgb):
        x = prepare(im)
        assert -0.1 < np.percentile(x, 1) < 0.1 and 0.9 < np.percentile(x, 99.8) < 1.1


@pytest.mark.parametrize("arr,msg", [
    (np.zeros((0, 0)), "empty"),
    (np.full((16, 16), np.nan, np.float32), "NaN"),
    (np.zeros((2, 3, 16, 16)), "dimensions"),
    (np.zeros((5, 16, 16)), "stacks"),
    (np.zeros((4, 4)), "too small"),
])
def test_bad_arrays_are_rejected_with_a_reason(arr, msg):
    with pytest.raises(InvalidImageError, match=msg):
        check_image(arr)
