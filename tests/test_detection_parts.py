"""The parts of the detector (``models.detection``) against hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from napari_nucleiseg.models.detection.anchors import AnchorGenerator, cell_anchors, grid_anchors
from napari_nucleiseg.models.detection.boxes import (
    BBOX_CLAMP,
    box_iou,
    clip,
    decode,
    encode,
    keep_large,
    targets_from_labels,
)
from napari_nucleiseg.models.detection.matcher import BACKGROUND, IGNORE, match, sample
from napari_nucleiseg.models.detection.nms import batched_nms, nms
from napari_nucleiseg.models.detection.roi_align import fpn_level, roi_align

T = torch.tensor


def test_box_iou_of_known_boxes():
    a = T([[0.0, 0, 2, 2], [0, 0, 4, 2]])
    b = T([[1.0, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    expected = [[1 / 7, 1.0, 0.0], [2 / 10, 0.5, 0.0]]  # [0,0,4,2] vs [1,1,3,3]: 2 / (8 + 4 - 2)
    assert torch.allclose(box_iou(a, b), T(expected))


def test_nms_keeps_and_drops_the_right_indices():
    boxes = T([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [5, 0, 15, 10]])
    scores = T([0.9, 0.8, 0.7, 0.85])
    # IoU(0, 1) = 81 / 119 = 0.68; IoU(0, 3) = 50 / 150; IoU(1, 3) = 54 / 146
    assert nms(boxes, scores, 0.5).tolist() == [0, 3, 2]
    assert nms(boxes, scores, 0.7).tolist() == [0, 3, 1, 2]
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_batched_nms_never_suppresses_across_groups():
    boxes = T([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    keep = batched_nms(boxes, T([0.5, 0.9, 0.7]), T([0, 0, 1]), 0.5)
    assert sorted(keep.tolist()) == [1, 2]


def test_box_coding_by_hand_and_round_trip():
    ref = T([[0.0, 0, 10, 10]])
    box = T([[2.0, 4, 12, 24]])  # centre (7, 14), 10 x 20
    assert torch.allclose(encode(ref, box), T([[0.2, 0.9, 0.0, math.log(2)]]))
    w = (10.0, 10.0, 5.0, 5.0)
    assert torch.allclose(encode(ref, box, w), T([[2.0, 9.0, 0.0, 5 * math.log(2)]]))
    rng = torch.Generator().manual_seed(0)
    refs = torch.rand((20, 2), generator=rng) * 50
    refs = torch.cat([refs, refs + 1 + torch.rand((20, 2), generator=rng) * 30], 1)
    boxes = torch.cat([refs[:, :2] + 2, refs[:, 2:] + 5], 1)
    assert torch.allclose(decode(refs, encode(refs, boxes, w), w), boxes, atol=1e-4)


def test_decode_clamps_huge_sizes():
    out = decode(T([[0.0, 0, 10, 10]]), T([[0.0, 0, 100.0, 100.0]]))
    assert out[0, 2] - out[0, 0] == pytest.approx(10 * math.exp(BBOX_CLAMP), rel=1e-5)


def test_clip_and_small_boxes():
    out = clip(T([[-5.0, -2, 30, 8], [3, 4, 5, 50]]), height=20, width=10)
    assert out.tolist() == [[0, 0, 10, 8], [3, 4, 5, 20]]
    assert keep_large(T([[0.0, 0, 1, 5], [0, 0, 3, 3]]), 2).tolist() == [1]


def test_targets_from_labels():
    lab = np.zeros((10, 12), np.int32)
    lab[2:5, 3:7] = 4
    lab[8, 0] = 9  # one pixel: too small
    t = targets_from_labels(lab, min_area=2)
    assert t["boxes"].tolist() == [[3, 2, 7, 5]] and t["ids"].tolist() == [4]
    assert t["labels"].shape == (10, 12)


def test_anchors_count_and_centres():
    cells = cell_anchors([16.0], [0.5, 1.0, 2.0])
    assert torch.allclose(cells[1], T([-8.0, -8, 8, 8]))
    w, h = 16 / math.sqrt(2), 16 * math.sqrt(2)  # ratio h / w = 2, area 16**2
    assert torch.allclose(cells[2], T([-w / 2, -h / 2, w / 2, h / 2]))
    a = grid_anchors(2, 3, 4, cells[1:2])
    centres = ((a[:, :2] + a[:, 2:]) / 2).tolist()
    assert centres == [[2, 2], [6, 2], [10, 2], [2, 6], [6, 6], [10, 6]]
    gen = AnchorGenerator((4, 8), ((8.0, 12.0), (18.0, 27.0)))
    levels = gen([(16, 16), (8, 8)])
    assert gen.per_location == [6, 6]
    assert [len(x) for x in levels] == [16 * 16 * 6, 8 * 8 * 6]


def _ramp(h=8, w=8):
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                            indexing="ij")
    return (xx + 10 * yy)[None, None]


def test_roi_align_on_a_ramp_is_the_ramp_at_bin_centres():
    # aligned: image point p is feature index p * scale - 0.5; bin centres of [1, 5] in 2 bins: 1.5, 3.5
    out = roi_align(_ramp(), T([[1.0, 1, 5, 5]]), T([0]), size=2, scale=1.0, ratio=2)
    assert torch.allclose(out[0, 0], T([[16.5, 18.5], [36.5, 38.5]]))
    # the same cells at stride 2
    out = roi_align(_ramp(), T([[2.0, 2, 10, 10]]), T([0]), size=2, scale=0.5, ratio=2)
    assert torch.allclose(out[0, 0], T([[16.5, 18.5], [36.5, 38.5]]))


def test_roi_align_bilinear_by_hand():
    f = T([[[[0.0, 1.0], [2.0, 4.0]]]])
    # a tiny box centred on image point (0.75, 1.25): feature index (x, y) = (0.25, 0.75)
    out = roi_align(f, T([[0.65, 1.15, 0.85, 1.35]]), T([0]), size=1, ratio=1)
    top, bottom = 0 + 0.25 * 1, 2 + 0.25 * 2
    assert out.item() == pytest.approx(0.25 * top + 0.75 * bottom)
    out = roi_align(f, T([[0.9, 0.9, 1.1, 1.1]]), T([0]), size=1, ratio=1)
    assert out.item() == pytest.approx(1.75)  # the middle of the four cells


def test_roi_align_picks_each_boxs_image():
    feats = torch.cat([_ramp(), _ramp() + 100])
    out = roi_align(feats, T([[1.0, 1, 5, 5], [1, 1, 5, 5]]), T([1, 0]), size=2)
    assert torch.allclose(out[0, 0], out[1, 0] + 100)


def test_fpn_level():
    boxes = T([[0.0, 0, 8, 8], [0, 0, 16, 16], [0, 0, 32, 32], [0, 0, 64, 64], [0, 0, 200, 200]])
    assert fpn_level(boxes, (2, 3, 4)).tolist() == [0, 0, 1, 2, 2]


def test_match_and_sample():
    gt = T([[0.0, 0, 10, 10], [100, 100, 110, 110]])
    boxes = T([[0.0, 0, 10, 10], [0, 0, 10, 5], [50, 50, 60, 60], [100, 100, 110, 104]])
    # IoU with gt: 1.0, 0.5, 0, 0.4 (the best for gt 1)
    assert match(gt, boxes, 0.7, 0.3).tolist() == [0, IGNORE, BACKGROUND, IGNORE]
    assert match(gt, boxes, 0.7, 0.3, low_quality=True).tolist() == [0, IGNORE, BACKGROUND, 1]
    assert match(gt[:0], boxes, 0.7, 0.3).tolist() == [BACKGROUND] * 4
    m = torch.tensor([0, 1, 2, BACKGROUND, BACKGROUND, IGNORE, BACKGROUND, 3])
    pos, neg = sample(m, 4, 0.25, torch.Generator().manual_seed(0))
    assert len(pos) == 1 and len(neg) == 3
    assert set(pos.tolist()) <= {0, 1, 2, 7} and set(neg.tolist()) <= {3, 4, 6}
