import numpy as np
import pytest
import torch

from napari_nucleiseg.evaluation.metrics import evaluate_image
from napari_nucleiseg.inference.postprocess import classical_instances, fill_holes, instances_from_maps


def _two_touching_discs(shape=(64, 96), r=14, gap=26):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    c1, c2 = (32, 34), (32, 34 + gap)
    d1 = (yy - c1[0]) ** 2 + (xx - c1[1]) ** 2 <= r * r
    d2 = (yy - c2[0]) ** 2 + (xx - c2[1]) ** 2 <= r * r
    gt = np.zeros(shape, np.int32)
    gt[d1] = 1
    gt[d2 & ~d1] = 2
    return gt


def _border_map(gt):
    from skimage.segmentation import find_boundaries

    return find_boundaries(gt, mode="thick").astype(np.float32)


def test_watershed_splits_two_touching_discs():
    gt = _two_touching_discs()
    fg = (gt > 0).astype(np.float32)
    assert np.unique(fg).size == 2 and len(np.unique(gt)) == 3
    labels = instances_from_maps(fg, _border_map(gt), min_size=4)
    assert labels.max() == 2, "the touching pair must be split in two"
    r = evaluate_image(gt, labels)
    assert r["ap50"] == 1.0 and r["dsb_score"] > 0.7


def test_without_border_the_pair_stays_merged():
    gt = _two_touching_discs()
    fg = (gt > 0).astype(np.float32)
    labels = instances_from_maps(fg, np.zeros_like(fg), min_size=4)
    assert labels.max() == 1


def test_min_size_and_fill_holes():
    fg = np.zeros((40, 40), np.float32)
    fg[5:15, 5:15] = 1
    fg[9:11, 9:11] = 0  # a hole
    fg[30:32, 30:32] = 1  # 4 pixels: too small
    labels = instances_from_maps(fg, np.zeros_like(fg), min_size=8)
    assert labels.max() == 1
    assert (labels[5:15, 5:15] == 1).all()


def test_classical_baseline_splits_touching_discs():
    gt = _two_touching_discs()
    image = (gt > 0).astype(np.float32) + 0.05
    labels = classical_instances(image, footprint=15)
    assert labels.max() == 2
    assert evaluate_image(gt, labels)["ap50"] == 1.0


def test_unsure_nuclei_are_dropped_by_mean_foreground():
    fg = np.zeros((40, 60), np.float32)
    fg[5:15, 5:15] = 0.95  # sure
    fg[5:15, 30:40] = 0.7  # above the threshold, but unsure
    border = np.zeros_like(fg)
    kept = instances_from_maps(fg, border, threshold=0.5, min_size=4)
    assert kept.max() == 2
    filtered = instances_from_maps(fg, border, threshold=0.5, min_size=4, min_mean_foreground=0.9)
    assert filtered.max() == 1 and (filtered[5:15, 5:15] == 1).all() and not filtered[:, 30:40].any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outline_markers_give_the_same_watershed_as_whole_seeds(seed):
    from scipy import ndimage as ndi
    from skimage.segmentation import find_boundaries, watershed

    from napari_nucleiseg.inference.postprocess import seed_outlines
    from napari_nucleiseg.synthetic import synthetic_nuclei

    _, truth = synthetic_nuclei((192, 192), n_nuclei=40, touching=0.6, seed=seed)[:2]
    rng = np.random.default_rng(seed)
    fg = np.clip(ndi.gaussian_filter((truth > 0).astype(np.float32), 1.5) + rng.normal(0, 0.1, truth.shape), 0, 1)
    border = np.clip(ndi.gaussian_filter(find_boundaries(truth).astype(np.float32), 1.0) * 3
                     + rng.normal(0, 0.1, truth.shape), 0, 1)
    mask = fg > 0.5
    markers, n = ndi.label(mask & (border < 0.4))
    assert n > 10
    elevation = (border - fg).astype(np.float32)
    outlines = seed_outlines(markers)
    assert (outlines > 0).sum() < (markers > 0).sum()  # inner pixels were dropped
    np.testing.assert_array_equal(watershed(elevation, outlines, mask=mask), watershed(elevation, markers, mask=mask))


def test_a_mostly_unsure_image_keeps_its_nuclei_for_the_confidence_column():
    fg = np.zeros((40, 90), np.float32)
    fg[5:15, 5:15] = 0.95
    for x in (30, 50, 70):  # three of four nuclei unsure: an unfamiliar image, not false positives
        fg[5:15, x:x + 10] = 0.7
    labels = instances_from_maps(fg, np.zeros_like(fg), min_size=4, min_mean_foreground=0.9)
    assert labels.max() == 4
    strict = instances_from_maps(fg, np.zeros_like(fg), min_size=4, min_mean_foreground=0.9,
                                 max_unsure_fraction=1.0)
    assert strict.max() == 1


def test_distance_seeds_split_touching_nuclei_that_the_border_map_misses():
    from napari_nucleiseg.training.augment import distance_from_labels

    gt = np.zeros((40, 70), np.int32)
    yy, xx = np.mgrid[:40, :70]
    gt[(yy - 20) ** 2 + (xx - 22) ** 2 < 144] = 1
    gt[((yy - 20) ** 2 + (xx - 44) ** 2 < 144) & (gt == 0)] = 2
    fg = (gt > 0).astype(np.float32)
    dist = distance_from_labels(torch.from_numpy(gt[None, None].astype(np.float32)))[0, 0].numpy()
    no_border = np.zeros_like(fg)
    assert instances_from_maps(fg, no_border, min_size=4).max() == 1  # one merged blob
    split = instances_from_maps(fg, no_border, min_size=4, distance=dist, seed="distance")
    assert split.max() == 2
    assert evaluate_image(gt, split)["ap50"] == 1.0
    with pytest.raises(ValueError, match="seed"):
        instances_from_maps(fg, no_border, seed="distance")


def test_objects_far_larger_than_the_images_nuclei_are_dropped():
    from napari_nucleiseg.inference.postprocess import kept_nuclei

    def oversized_dropped(labels, ratio):
        return kept_nuclei(labels, np.ones(labels.shape, np.float32), 1, ratio, 0.0, 0.5)

    labels = np.zeros((200, 200), np.int32)
    for i in range(6):  # six 5x5 nuclei (25 px) and one 40x40 blob (1600 px = 64x the median)
        labels[10 + 30 * i: 15 + 30 * i, 10:15] = i + 1
    labels[100:140, 100:140] = 7
    kept = oversized_dropped(labels, 30.0)
    assert set(np.unique(kept)) == set(range(7))
    np.testing.assert_array_equal(oversized_dropped(labels, 100.0), labels)  # 64x is within a ratio of 100
    np.testing.assert_array_equal(oversized_dropped(labels, 0), labels)
    few = np.where(labels > 3, 0, labels)
    few[100:140, 100:140] = 7
    assert (oversized_dropped(few, 30.0)[100:140, 100:140] > 0).all()  # four objects: no median to judge by


def test_the_watershed_drops_a_gland_sized_blob_but_keeps_the_nuclei():
    gt = np.zeros((256, 256), np.int32)
    for i in range(8):
        yy, xx = np.mgrid[:256, :256]
        gt[(yy - 20) ** 2 + (xx - 15 - 30 * i) ** 2 <= 36] = i + 1
    gt[120:240, 60:200] = 9  # 16,800 px against nuclei of ~113 px
    fg = (gt > 0).astype(np.float32)
    border = _border_map(gt)
    labels = instances_from_maps(fg, border, min_size=8)
    assert labels.max() == 8 and not labels[120:240, 60:200].any()
    assert instances_from_maps(fg, border, min_size=8, max_area_ratio=0).max() == 9


@pytest.mark.parametrize("seed", range(4))
def test_fill_holes_equals_scipy(seed):
    from scipy import ndimage as ndi

    rng = np.random.default_rng(seed)
    noise = ndi.gaussian_filter(rng.random((90, 70)), 1.5 + seed)
    mask = noise > np.quantile(noise, 0.3 + 0.1 * seed)  # blobs, holes, background touching edges
    mask[40:50, 30:40], mask[43:47, 33:37] = True, False  # one certain hole
    expected = ndi.binary_fill_holes(mask)
    assert expected[45, 35] and not mask[45, 35]
    np.testing.assert_array_equal(fill_holes(mask), expected)
    # diagonal background does not connect a hole to the outside (4-connected, as scipy)
    corner = np.ones((5, 5), bool)
    corner[0, 0] = corner[1, 1] = False
    filled = fill_holes(corner)
    assert filled[1, 1] and not filled[0, 0] and not fill_holes(np.zeros((4, 4), bool)).any()


def _chain(labels, fg, min_size, ratio, min_mean, max_fraction):
    """The filters one after the other, each on the labels the one before left, then
    relabel_sequential: what ``kept_nuclei`` must equal."""
    from skimage.segmentation import relabel_sequential

    from napari_nucleiseg.inference.postprocess import remove_small

    labels = remove_small(labels, min_size)
    sizes = np.bincount(labels.ravel())
    present = sizes[1:][sizes[1:] > 0]
    if ratio > 0 and len(present) >= 5:
        big = sizes > ratio * np.median(present)
        big[0] = False
        labels = np.where(big[labels], 0, labels)
    if min_mean > 0 and labels.max():
        sums = np.bincount(labels.ravel(), weights=fg.ravel())
        counts = np.bincount(labels.ravel())
        present = counts > 0
        present[0] = False
        unsure = present & (sums < min_mean * counts)
        if unsure.sum() <= max_fraction * present.sum():
            labels = np.where(unsure[labels], 0, labels)
    return relabel_sequential(labels.astype(np.int32))[0]


@pytest.mark.parametrize("seed", range(6))
def test_kept_nuclei_equals_the_filters_in_turn(seed):
    from scipy import ndimage as ndi

    from napari_nucleiseg.inference.postprocess import kept_nuclei

    rng = np.random.default_rng(seed)
    blobs = ndi.gaussian_filter(rng.random((120, 150)), 2.0)
    labels = ndi.label(blobs > np.quantile(blobs, 0.6))[0].astype(np.int32)
    labels[:40, :40] = labels.max() + 1  # a blob many times the median
    labels[np.isin(labels, rng.choice(labels.max(), 3))] = 0  # gaps in the ids
    fg = rng.random(labels.shape).astype(np.float32)
    kept_some = dropped_some = False
    for min_size, ratio, min_mean, max_fraction in [(1, 0, 0, 0.5), (8, 30, 0.5, 0.5), (20, 5, 0.52, 1.0),
                                                    (4, 10, 0.49, 0.3), (10_000, 30, 0.5, 0.5)]:
        expected = _chain(labels, fg, min_size, ratio, min_mean, max_fraction)
        got = kept_nuclei(labels, fg, min_size, ratio, min_mean, max_fraction)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, expected)
        kept_some |= 0 < got.max() < len(np.unique(labels)) - 1
        dropped_some |= got.max() == 0
    assert kept_some and dropped_some
    # exactly the largest share of unsure nuclei that may go: they go
    squares = np.zeros((10, 40), np.int32)
    for i in range(4):
        squares[2:7, 10 * i: 10 * i + 5] = i + 1
    sure = np.where(np.isin(squares, [1, 3]), 0.9, 0.1).astype(np.float32)
    half = kept_nuclei(squares, sure, 1, 0, 0.5, 0.5)
    np.testing.assert_array_equal(half, _chain(squares, sure, 1, 0, 0.5, 0.5))
    assert half.max() == 2


def test_redrawn_outlines_follow_the_mask_and_keep_the_nuclei():
    from skimage.segmentation import watershed

    from napari_nucleiseg.inference.postprocess import redraw_outlines

    labels = _two_touching_discs()  # two touching discs, and a lone small square
    labels[5:9, 85:89] = 3
    truth = _two_touching_discs(r=16)  # the same nuclei, 2 px wider
    mask = truth > 0
    mask[50:60, 0:5] = True  # a blob touching no nucleus stays background
    elevation = _border_map(truth) - mask.astype(np.float32)
    redrawn = redraw_outlines(labels, mask, elevation)
    assert redrawn.dtype == np.int32 and set(np.unique(redrawn)) == {0, 1, 2, 3}
    assert (redrawn[:, :5] == 0).all()
    assert np.array_equal(redrawn[5:9, 85:89], labels[5:9, 85:89])  # outside the mask: kept whole
    for i in (1, 2):
        assert evaluate_image(truth == i, redrawn == i)["semantic_iou"] > 0.95
        assert evaluate_image(truth == i, labels == i)["semantic_iou"] < 0.9
    # the same as a watershed over the whole mask from every nucleus pixel inside it
    whole = watershed(elevation, np.where(mask, labels, 0), mask=mask)
    whole[labels == 3] = 3
    np.testing.assert_array_equal(redrawn, whole)
    shrunk = redraw_outlines(truth, labels > 0, elevation)  # a narrower mask trims the outlines
    np.testing.assert_array_equal(shrunk, np.where(labels > 0, truth, 0))
