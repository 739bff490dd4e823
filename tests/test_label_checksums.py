"""The labels of six DSB validation images are bit for bit those taken before the restructure."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from napari_nucleiseg import segment
from napari_nucleiseg.device import cpu_has_bf16, describe
from napari_nucleiseg.inference.kinds import image_kind
from napari_nucleiseg.io.images import read_image

# The checksums move when new weights ship: take them again with the new weights. Prediction
# runs in bf16 on CPUs that compute it natively and in float32 elsewhere: one set for each.
PRECISION = "bf16" if cpu_has_bf16() else "fp32"
CHECKSUMS = json.loads((Path(__file__).parent / "data" / "label_checksums.json").read_text())[PRECISION]


@pytest.mark.parametrize("name", sorted(CHECKSUMS))
def test_labels_match_their_checksum(dsb_dir, name):
    expected = CHECKSUMS[name]
    image = read_image(dsb_dir / "train" / "images" / f"{name}.png")
    assert image_kind(image) == expected["kind"]
    seg = segment(image, device="cpu")
    labels = np.ascontiguousarray(seg.labels, np.int32)
    found = {"n": len(np.unique(labels)) - 1, "zoom": seg.zoom,
             "sha256": hashlib.sha256(labels.tobytes()).hexdigest()}
    assert found == {k: expected[k] for k in found}, describe(torch.device("cpu"))
