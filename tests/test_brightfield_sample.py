"""The bright-field sample (scikit-image's IHC image) with the default model: the blue haematoxylin
nuclei are found and the brown DAB-stained glands are not taken for nuclei (issue 14)."""

import numpy as np

from napari_nucleiseg import segment
from napari_nucleiseg._napari.samples import make_brightfield_sample


def test_the_default_model_finds_the_ihc_nuclei_and_no_gland():
    image = make_brightfield_sample()[0][0]
    seg = segment(image, device="cpu")
    areas = np.bincount(seg.labels.ravel())[1:]
    areas = areas[areas > 0]
    assert seg.settings["image_kind"] == "stained"
    assert len(areas) >= 100  # ~150 small nuclei of 50-500 px
    assert areas.max() <= 2000  # the glands are 10,000-40,000 px
