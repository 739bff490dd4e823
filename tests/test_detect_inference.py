"""Instance models in ``segment()``'s path: pasting masks into labels, tile seams, nucleus sizing
(with a stand-in detector that boxes the bright blobs of its tile)."""

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_nucleiseg.inference.detect import Detections, detect, instance_maps, sized_detection
from napari_nucleiseg.inference.paste import paste


class BlobDetector(torch.nn.Module):
    """Boxes every connected bright region (> 0.5) of its input, score 0.9, full masks."""

    outputs_instances = True

    def forward(self, x):
        lab, _ = ndi.label(x[0, 0].float().numpy() > 0.5)
        boxes = [[s[1].start, s[0].start, s[1].stop, s[0].stop] for s in ndi.find_objects(lab)]
        n = len(boxes)
        return [{"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(n, 4),
                 "scores": torch.full((n,), 0.9), "masks": torch.ones((n, 28, 28))}]


def _discs(shape, centres, r):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = np.zeros(shape, np.float32)
    for cy, cx in centres:
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1.0
    return img


def test_paste_one_mask_into_its_box():
    labels, prob, scores = paste(np.array([[2.0, 2, 6, 6]]), np.array([0.8]), np.ones((1, 28, 28)), (8, 8))
    expected = np.zeros((8, 8), np.int32)
    expected[2:6, 2:6] = 1
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(prob, expected.astype(np.float32))
    np.testing.assert_allclose(scores, [0.0, 0.8])


def test_paste_samples_the_mask_at_pixel_centres():
    mask = np.zeros((1, 28, 28), np.float32)
    mask[0, :, :14] = 1  # left half of the box [0, 8)
    labels, _, _ = paste(np.array([[0.0, 0, 8, 8]]), np.array([0.9]), mask, (8, 10))
    # column 3's centre 3.5 is mask cell 3.5 / 8 * 28 - 0.5 = 11.75 (inside), column 4's is 15.25
    assert (labels[:, :4] == 1).all() and (labels[:, 4:] == 0).all()


def test_paste_resolves_overlaps_by_score():
    boxes = np.array([[0.0, 0, 10, 10], [5, 0, 15, 10], [3, 0, 13, 10], [20, 0, 30, 10], [40, 0, 42, 2]])
    scores = np.array([0.9, 0.8, 0.85, 0.3, 0.9])
    labels, _, kept = paste(boxes, scores, np.ones((5, 28, 28)), (10, 50), threshold=0.5, min_size=5)
    # 0 first (0.9), 4 is too small, 2 keeps 3 of 10 columns (< MIN_FREE): dropped, 1 keeps half
    assert (labels[:, :10] == 1).all() and (labels[:, 10:15] == 2).all()
    assert labels.max() == 2 and (labels[:, 20:] == 0).all()  # 3 scored below the threshold
    np.testing.assert_allclose(kept, [0.0, 0.9, 0.8])


def test_tile_seams_find_each_nucleus_once():
    centres = [(30, 20), (30, 80), (30, 100), (70, 125), (70, 170)]  # tiles [0, 128) and [72, 200)
    image = _discs((100, 200), centres, 8)
    dev = torch.device("cpu")
    whole = detect(BlobDetector(), image, dev, tile=1024)
    tiled = detect(BlobDetector(), image, dev, tile=128, overlap=48)
    assert len(whole.scores) == len(tiled.scores) == len(centres)
    key = lambda d: sorted(map(tuple, d.boxes.round().astype(int).tolist()))  # noqa: E731
    assert key(tiled) == key(whole)


def test_sized_detection_shrinks_large_nuclei_and_scales_boxes_back():
    centres = [(50, 50), (50, 150), (150, 100)]
    image = _discs((200, 200), centres, 30)
    passes = []

    def run(im):
        passes.append(im.shape)
        return detect(BlobDetector(), (im > 0.5).astype(np.float32), torch.device("cpu"))

    dets, zoom = sized_detection(run, image, 0.5, target=20.0)
    assert passes[0] == (200, 200) and passes[1][0] < 100 and zoom < 0.5
    assert len(dets.scores) == 3
    centre = np.stack([(dets.boxes[:, 1] + dets.boxes[:, 3]) / 2, (dets.boxes[:, 0] + dets.boxes[:, 2]) / 2], 1)
    found = sorted(map(tuple, centre.round().tolist()))
    np.testing.assert_allclose(found, sorted(centres), atol=3)
    maps, labels, scores = instance_maps(dets, image.shape, {"threshold": 0.5, "min_size": 8})
    assert labels.max() == 3 and set(maps) >= {"foreground", "border", "variance"}
    assert not maps["border"].any() and len(scores) == 4


def test_detections_median_diameter():
    d = Detections(np.array([[0.0, 0, 10, 10], [0, 0, 20, 20], [0, 0, 2, 2]], np.float32),
                   np.array([0.9, 0.9, 0.1], np.float32), np.ones((3, 28, 28), np.float32))
    # areas 100 and 400 (the third is below the score): median 250
    assert abs(d.median_diameter(0.5) - np.sqrt(4 * 250 / np.pi)) < 1e-4
    assert Detections.empty().median_diameter(0.5) is None
