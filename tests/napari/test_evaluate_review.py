"""Evaluate widget (scores + error layer) and review helper (least confident first, centring)."""

import numpy as np
import pandas as pd
import pytest

from napari_nucleiseg._napari.evaluate_widget import EvaluateWidget
from napari_nucleiseg._napari.review_widget import ReviewWidget, review_order
from napari_nucleiseg.evaluation.metrics import CORRECT, FALSE_POSITIVE, MISSED, evaluate_labels


def _truth_and_prediction():
    gt = np.zeros((64, 64), np.int32)
    gt[5:15, 5:15] = 1      # found
    gt[30:40, 30:40] = 2    # missed
    pred = np.zeros_like(gt)
    pred[5:15, 6:15] = 7    # IoU 0.9 with true nucleus 1
    pred[50:60, 5:15] = 8   # false positive
    return gt, pred


def test_evaluate_labels_counts_and_error_map():
    gt, pred = _truth_and_prediction()
    m, err = evaluate_labels(gt, pred)
    assert (m["tp"], m["fp"], m["fn"]) == (1, 1, 1)
    assert m["ap50"] == pytest.approx(1 / 3) and m["f1"] == pytest.approx(0.5)
    assert err[10, 10] == CORRECT and err[35, 35] == MISSED and err[55, 10] == FALSE_POSITIVE
    assert err[0, 0] == 0
    m3, err3 = evaluate_labels(np.stack([gt, gt]), np.stack([pred, gt]))
    assert (m3["tp"], m3["fp"], m3["fn"]) == (3, 1, 1) and err3.shape == (2, 64, 64)
    with pytest.raises(ValueError, match="shapes"):
        evaluate_labels(gt, pred[:32])


def test_evaluate_widget_shows_scores_and_adds_error_layer(make_napari_viewer):
    viewer = make_napari_viewer()
    gt, pred = _truth_and_prediction()
    viewer.add_labels(gt, name="cells ground truth", scale=(0.5, 0.5))
    viewer.add_labels(pred, name="cells nuclei", scale=(0.5, 0.5))
    _, widget = viewer.window.add_plugin_dock_widget("napari-nucleiseg", "Evaluate Against Ground Truth")
    assert isinstance(widget, EvaluateWidget)
    assert widget._gt.value.name == "cells ground truth" and widget._pred.value.name == "cells nuclei"
    m = widget.evaluate()
    assert m["fp"] == 1 and m["fn"] == 1
    assert "DSB score" in widget._result.value and "False positives: 1" in widget._result.value
    assert widget._result.value.startswith("'cells nuclei' against 'cells ground truth':")
    errors = viewer.layers["cells nuclei errors"]
    assert errors.data[35, 35] == MISSED
    np.testing.assert_allclose(errors.scale, (0.5, 0.5))
    n = len(viewer.layers)
    widget.evaluate()  # again: replaced, not added
    assert len(viewer.layers) == n


def test_evaluate_button_scores_in_the_background(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    gt, pred = _truth_and_prediction()
    viewer.add_labels(np.stack([gt, gt, gt]), name="cells ground truth")
    viewer.add_labels(np.stack([pred, gt, pred]), name="cells nuclei")
    widget = EvaluateWidget(viewer)
    widget._button.native.click()
    assert widget.worker is not None
    qtbot.waitUntil(lambda: widget.metrics is not None and widget._button.enabled, timeout=30000)
    assert widget.metrics["fp"] == 2 and widget.metrics["fn"] == 2  # two planes with one error each
    assert viewer.layers["cells nuclei errors"].data.shape == (3,) + gt.shape
    assert widget._button.text == "Evaluate"


def test_evaluate_widget_refuses_mismatched_shapes(make_napari_viewer, monkeypatch):
    import napari_nucleiseg._napari.evaluate_widget as ew

    errors = []
    monkeypatch.setattr(ew, "show_error", errors.append)
    viewer = make_napari_viewer()
    a = viewer.add_labels(np.zeros((32, 32), np.int32), name="a ground truth")
    b = viewer.add_labels(np.zeros((16, 16), np.int32), name="b nuclei")
    widget = EvaluateWidget(viewer)
    assert widget.evaluate(b, a) is None
    assert errors and "shapes" in errors[0]
    assert [la.name for la in viewer.layers] == ["a ground truth", "b nuclei"]


def _features():
    return pd.DataFrame({"index": [1, 2, 3], "label": [1, 2, 3], "area": [50, 40, 30],
                         "centroid_y": [10.0, 40.0, 50.0], "centroid_x": [10.0, 20.0, 55.0],
                         "confidence": [0.9, 0.3, 0.6]})


def test_review_order_least_confident_first():
    assert list(review_order(_features())["label"]) == [2, 3, 1]
    with pytest.raises(ValueError, match="confidence"):
        review_order(_features().drop(columns="confidence"))


def test_review_widget_centres_on_chosen_nucleus(make_napari_viewer):
    viewer = make_napari_viewer()
    labels = np.zeros((64, 64), np.int32)
    labels[8:13, 8:13], labels[38:43, 18:23], labels[48:53, 53:58] = 1, 2, 3
    viewer.add_image(np.zeros((64, 64)), name="img", scale=(2.0, 2.0))
    layer = viewer.add_labels(labels, name="img nuclei", features=_features(), scale=(2.0, 2.0))
    _, widget = viewer.window.add_plugin_dock_widget("napari-nucleiseg", "Review Least Certain Nuclei")
    assert isinstance(widget, ReviewWidget)
    assert widget._layer.value is layer
    assert len(widget._nuclei_list.choices) == 3 and "#2" in widget._nuclei_list.native.item(0).text()
    viewer.layers.selection.active = viewer.layers["img"]
    widget._nuclei_list.value = [0]  # the least confident nucleus: label 2 at (40, 20) pixels
    np.testing.assert_allclose(viewer.camera.center[-2:], (80.0, 40.0))
    assert layer.selected_label == 2
    # ready to correct: the nuclei layer is active, the paint tool on, the nucleus shown alone
    assert viewer.layers.selection.active is layer and layer.mode == "paint" and layer.show_selected_label
    widget._highlight.value = False
    assert not layer.show_selected_label
    widget._tool.value = "erase"
    widget.next()
    np.testing.assert_allclose(viewer.camera.center[-2:], (100.0, 110.0))
    assert layer.selected_label == 3 and layer.mode == "erase" and not layer.show_selected_label


def test_review_widget_explains_layers_without_confidence(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_labels(np.zeros((16, 16), np.int32), name="hand drawn")
    widget = ReviewWidget(viewer)
    assert widget.rows.empty and "Segment Nuclei" in widget._info.value


def test_review_list_follows_new_results(make_napari_viewer):
    viewer = make_napari_viewer()
    labels = np.zeros((64, 64), np.int32)
    for label, (y, x) in zip((1, 2, 3), ((10, 10), (40, 20), (50, 55))):
        labels[y - 2:y + 3, x - 2:x + 3] = label
    layer = viewer.add_labels(labels, name="img nuclei", features=_features())
    widget = ReviewWidget(viewer)
    assert len(widget.rows) == 3
    layer.features = _features().head(2)  # e.g. Segment Nuclei ran again
    assert len(widget.rows) == 2 and len(widget._nuclei_list.choices) == 2


def test_review_widget_moves_to_the_plane_of_a_stack(make_napari_viewer):
    viewer = make_napari_viewer()
    labels = np.zeros((3, 32, 32), np.int32)
    labels[2, 10:14, 20:24] = 5
    feats = pd.DataFrame({"index": [5], "label": [5], "plane": [2], "area": [16],
                          "centroid_y": [11.5], "centroid_x": [21.5], "confidence": [0.2]})
    layer = viewer.add_labels(labels, name="zs nuclei", features=feats, scale=(3.0, 1.0, 1.0))
    widget = ReviewWidget(viewer)
    assert "(plane 2)" in widget._nuclei_list.native.item(0).text()
    widget.go_to(0)
    assert viewer.dims.current_step[0] == 2
    np.testing.assert_allclose(viewer.camera.center[-2:], (11.5, 21.5))
    assert layer.selected_label == 5


def test_evaluate_scores_the_full_resolution_of_a_multiscale_layer(viewer, qtbot, small_field):
    _, truth = small_field
    prediction = viewer.add_labels([truth, truth[::2, ::2]], name="cells nuclei", multiscale=True)
    ground_truth = viewer.add_labels(truth, name="cells ground truth")
    widget = EvaluateWidget(viewer)
    widget.start(prediction, ground_truth)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    assert widget.metrics is not None and widget.metrics["dsb_score"] == 1.0


def test_a_prediction_removed_while_scored_gets_no_error_layer(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    gt, pred = _truth_and_prediction()
    viewer.add_labels(gt, name="cells ground truth")
    predicted = viewer.add_labels(pred, name="cells nuclei")
    widget = EvaluateWidget(viewer)
    widget._button.native.click()
    viewer.layers.remove(predicted)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    assert [layer.name for layer in viewer.layers] == ["cells ground truth"]
    assert "was removed" in widget._result.value


def test_next_keeps_the_picked_row_in_sight(viewer):
    labels = np.zeros((64, 640), np.int32)
    for k in range(60):
        labels[10:15, 10 * k + 2: 10 * k + 7] = k + 1
    features = pd.DataFrame({"label": np.arange(1, 61), "confidence": np.linspace(0.1, 0.9, 60),
                             "centroid_y": 12.0, "centroid_x": 10.0 * np.arange(60) + 4, "area": 25})
    viewer.add_labels(labels, name="cells nuclei", features=features)
    _, widget = viewer.window.add_plugin_dock_widget("napari-nucleiseg", "Review Least Certain Nuclei")
    native = widget._nuclei_list.native
    native.setFixedHeight(160)
    for _ in range(45):
        widget.next()
    item = native.item(44)
    assert native.viewport().rect().intersects(native.visualItemRect(item)) and native.verticalScrollBar().value() > 0
