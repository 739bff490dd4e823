import numpy as np
import pytest

from napari_nucleiseg.evaluation.metrics import auroc, evaluate_image, iou_matrix, match_status, summarize


def _square(shape, y, x, size, value, out=None):
    out = np.zeros(shape, np.int32) if out is None else out
    out[y: y + size, x: x + size] = value
    return out


def test_perfect_match_scores_one():
    gt = _square((20, 20), 2, 2, 5, 1)
    gt = _square((20, 20), 10, 10, 6, 2, gt)
    pred = np.where(gt == 1, 7, np.where(gt == 2, 3, 0))  # same objects, other ids
    r = evaluate_image(gt, pred)
    assert r["dsb_score"] == 1.0 and r["ap50"] == 1.0 and r["f1"] == 1.0 and r["pq"] == 1.0
    assert (r["tp"], r["fp"], r["fn"]) == (2, 0, 0)


def test_hand_computed_partial_overlap():
    # gt 10x10 square; prediction shifted by 2 columns: overlap 80, union 120 -> IoU 2/3
    gt = _square((30, 30), 0, 0, 10, 1)
    pred = np.zeros_like(gt)
    pred[0:10, 2:12] = 1
    assert iou_matrix(gt, pred)[0, 0] == pytest.approx(80 / 120)
    r = evaluate_image(gt, pred)
    # hits at t = 0.50, 0.55, 0.60, 0.65 (IoU 0.667 > t), misses at 0.70..0.95 -> 4 of 10
    assert r["dsb_score"] == pytest.approx(4 / 10)
    assert r["ap50"] == 1.0
    assert r["pq"] == pytest.approx(80 / 120)


def test_false_positive_and_missed_nucleus():
    gt = _square((30, 30), 0, 0, 5, 1)
    gt = _square((30, 30), 20, 20, 5, 2, gt)
    pred = _square((30, 30), 0, 0, 5, 1)
    pred = _square((30, 30), 10, 10, 4, 2, pred)  # a false positive; gt 2 is missed
    r = evaluate_image(gt, pred)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 1, 1)
    assert r["ap50"] == pytest.approx(1 / 3)
    assert r["f1"] == pytest.approx(0.5)
    assert r["dsb_score"] == pytest.approx(1 / 3)
    correct, found = match_status(gt, pred)
    assert correct[1] and not correct[2]
    assert found[1] and not found[2]


def test_empty_images():
    empty = np.zeros((8, 8), np.int32)
    assert evaluate_image(empty, empty)["dsb_score"] == 1.0
    one = _square((8, 8), 1, 1, 3, 1)
    assert evaluate_image(one, empty)["dsb_score"] == 0.0
    assert evaluate_image(empty, one)["ap50"] == 0.0


def test_summarize_is_mean_over_images():
    a = {"dsb_score": 1.0, "ap50": 1.0, "f1": 1.0, "pq": 1.0, "semantic_iou": 1.0, "tp": 1, "fp": 0, "fn": 0,
         "n_true": 1, "n_pred": 1}
    b = {**a, "dsb_score": 0.0, "tp": 0, "fn": 1}
    s = summarize([a, b])
    assert s["dsb_score"] == 0.5 and s["tp"] == 1 and s["fn"] == 1 and s["n_images"] == 2


def test_auroc():
    assert auroc([0.9, 0.8, 0.3, 0.1], [True, True, False, False]) == 1.0
    assert auroc([0.1, 0.2, 0.8, 0.9], [True, True, False, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert np.isnan(auroc([0.5], [True]))


def test_aji_by_hand():
    from napari_nucleiseg.evaluation.metrics import aji

    gt = np.zeros((10, 10), int)
    gt[0:4, 0:4] = 1  # 16 px
    gt[6:10, 6:10] = 2  # 16 px, missed
    pred = np.zeros_like(gt)
    pred[0:4, 0:2] = 1  # 8 px inside nucleus 1
    pred[0:2, 6:8] = 2  # 4 px spurious
    # pairs: (1, 1): I 8, U 16; nucleus 2 unmatched: U += 16; spurious prediction: U += 4
    assert np.isclose(aji(gt, pred), 8 / (16 + 16 + 4))
    assert aji(gt, gt) == 1.0
    assert aji(gt, np.zeros_like(gt)) == 0.0


def test_evaluate_labels_stops_between_planes_when_cancelled():
    import pytest

    from napari_nucleiseg.errors import Cancelled
    from napari_nucleiseg.evaluation.metrics import evaluate_labels

    gt = np.zeros((3, 16, 16), np.int32)
    gt[:, 2:6, 2:6] = 1
    calls = []
    with pytest.raises(Cancelled):
        evaluate_labels(gt, gt, cancel=lambda: calls.append(1) or len(calls) > 1)
    assert len(calls) == 2  # one plane scored, stopped before the second


def test_memory_follows_the_pairs_not_true_times_predicted_nuclei():
    import tracemalloc

    labels = np.zeros((400, 400), np.int32)
    for k in range(6400):  # 6,400 nuclei of 5 x 5 pixels: a dense overlap table would take 330 MB
        y, x = divmod(k, 80)
        labels[y * 5:y * 5 + 4, x * 5:x * 5 + 4] = k + 1
    tracemalloc.start()
    s = evaluate_image(labels, labels)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert s["dsb_score"] == 1.0 and s["tp"] == 6400
    assert peak < 40e6


def test_empty_slices_of_a_stack_do_not_lift_its_scores():
    from napari_nucleiseg.evaluation.metrics import evaluate_labels

    truth = np.zeros((10, 32, 32), np.int32)
    truth[3, 5:15, 5:15] = 1
    truth[7, 5:15, 5:15] = 2
    scores, _ = evaluate_labels(truth, np.zeros_like(truth))
    assert scores["dsb_score"] == 0.0 and scores["fn"] == 2  # it read 0.8 from the eight empty slices
    scores, _ = evaluate_labels(np.zeros_like(truth), np.zeros_like(truth))
    assert scores["dsb_score"] == 1.0
