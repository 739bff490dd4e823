"""A nuclei layer's table follows the user's edits: painted nuclei are measured again, erased ones
leave it, an undo brings a nucleus' first row back, and the Review list follows."""

import numpy as np
import pandas as pd
import pytest

from napari_nucleiseg._napari import live_table
from napari_nucleiseg._napari.features import label_features
from napari_nucleiseg._napari.layer_output import put_layers
from napari_nucleiseg._napari.review_widget import ReviewWidget, describe_row
from napari_nucleiseg.inference.measure import measure
from napari_nucleiseg.synthetic import synthetic_nuclei


@pytest.fixture
def result(viewer):
    image, labels = synthetic_nuclei((96, 96), n_nuclei=6, touching=0.0, seed=4)
    ones = np.ones(labels.shape, np.float32)
    table = measure(labels, image, ones, ones * 0.2, scale=(0.5, 0.5))
    [layer] = put_layers(viewer, [(labels.astype(np.int32), {"name": "cells nuclei", "scale": (0.5, 0.5),
                                                             "features": label_features(table)}, "labels")])
    return layer, table.set_index("label")


def _rows(layer):
    return layer.features.set_index("label")


def test_painting_erasing_and_a_new_nucleus_update_the_table(result, qtbot):
    layer, table = result
    ids = sorted(table.index)
    y, x = (int(v) for v in table.loc[ids[0], ["centroid_y", "centroid_x"]])
    layer.paint((y, x + 12), ids[0])  # a brush stroke grows one nucleus
    layer.fill((y, x), 0)  # ... then the fill tool erases it whole
    layer.paint((4, 4), 99)  # a new one
    qtbot.waitUntil(lambda: 99 in _rows(layer).index, timeout=3000)
    rows = _rows(layer)
    assert ids[0] not in rows.index and len(rows) == len(table)
    assert rows.loc[99, "area"] == (layer.data == 99).sum() and rows.loc[99, "edited"]
    assert rows.loc[99, "area_physical"] == pytest.approx(rows.loc[99, "area"] * 0.25)
    assert np.isnan(rows.loc[99, "confidence"])
    assert not rows.loc[ids[1], "edited"] and rows.loc[ids[1], "confidence"] == table.loc[ids[1], "confidence"]
    assert (layer.features["index"] == layer.features["label"]).all()


def test_an_undo_brings_back_the_first_row(result, qtbot):
    layer, table = result
    label = int(table.index[2])
    y, x = (int(v) for v in table.loc[label, ["centroid_y", "centroid_x"]])
    layer.fill((y, x), 0)
    qtbot.waitUntil(lambda: label not in _rows(layer).index, timeout=3000)
    layer.undo()  # napari tells of no paint: the refresh that follows is enough
    qtbot.waitUntil(lambda: label in _rows(layer).index, timeout=3000)
    row = _rows(layer).loc[label]
    assert not row["edited"] and row["confidence"] == table.loc[label, "confidence"]
    assert row["area"] == table.loc[label, "area"]


def test_a_new_result_brings_its_own_table(viewer, result):
    layer, table = result
    labels = np.zeros(layer.data.shape, np.int32)
    labels[:5, :5] = table.index[0]
    new = table.head(1).assign(area=25).reset_index()
    put_layers(viewer, [(labels, {"name": "cells nuclei", "features": label_features(new)}, "labels")])
    assert live_table.up_to_date(layer)  # taken as it came, not measured against the old labels
    assert _rows(layer)["area"].tolist() == [25] and "edited" not in layer.features.columns


def test_the_review_list_follows_the_edits(viewer, result, qtbot):
    layer, table = result
    widget = ReviewWidget(viewer)
    widget._layer.value = layer
    first = int(widget.rows.iloc[0]["label"])
    y, x = (int(v) for v in table.loc[first, ["centroid_y", "centroid_x"]])
    layer.paint((y, x + 10), first)  # repainted: no longer the least confident, and said so
    qtbot.waitUntil(lambda: widget.rows.iloc[-1]["label"] == first, timeout=3000)
    assert describe_row(widget.rows.iloc[-1]).startswith(f"#{first}  edited")
    assert int(widget.rows.iloc[0]["label"]) != first


def test_lazy_or_huge_labels_are_left_to_the_writer(viewer, monkeypatch):
    import dask.array as da

    lazy = viewer.add_labels(da.zeros((64, 64), dtype=np.int32), name="lazy")
    assert not live_table.follow_edits(lazy)
    monkeypatch.setattr(live_table, "MAX_PIXELS", 100)
    big = viewer.add_labels(np.zeros((64, 64), np.int32), name="big")
    assert not live_table.follow_edits(big) and not live_table.up_to_date(big)


def test_changed_labels_by_pixel_count():
    before = live_table._pixel_counts(np.array([[0, 1, 1], [2, 2, 5]]))
    after = live_table._pixel_counts(np.array([[0, 1, 1], [2, 7, 7]]))
    assert live_table._changed(before, after).tolist() == [2, 5, 7]
    huge = live_table._pixel_counts(np.array([[0, 2**40]], np.int64))
    assert huge[0].tolist() == [2**40] and huge[1].tolist() == [1]
    assert live_table._pixel_counts(np.array([[-1, 2]])) is None


def test_a_result_opened_from_a_file_follows_edits_once_a_widget_is_docked(viewer, qtbot):
    image, labels = synthetic_nuclei((96, 96), n_nuclei=6, touching=0.0, seed=4)
    ones = np.ones(labels.shape, np.float32)
    features = label_features(measure(labels, image, ones, ones * 0.2))
    before = viewer.add_labels(labels.astype(np.int32), name="before", features=features)
    viewer.window.add_plugin_dock_widget("napari-nucleiseg", "Segment Nuclei")
    after = viewer.add_labels(labels.astype(np.int32), name="after", features=features)
    other = viewer.add_labels(labels.astype(np.int32), name="another tool's", features=features[["label", "area"]])
    for layer in (before, after, other):
        layer.paint((4, 4), 99)
    qtbot.waitUntil(lambda: 99 in _rows(before).index and 99 in _rows(after).index, timeout=3000)
    assert 99 not in _rows(other).index and not live_table.up_to_date(other)


def test_a_nucleus_reshaped_to_its_old_pixel_count_is_measured_again(result, qtbot):
    layer, table = result
    label = int(table.index[1])
    ys, xs = np.nonzero(layer.data == label)
    layer.brush_size = 3
    layer.paint((int(ys.min()) + 1, int(xs.mean())), 0)  # a bite out of its top...
    bitten = int(table.loc[label, "area"] - (layer.data == label).sum())
    for y in range(int(ys.max()) + 1, int(ys.max()) + 12):  # ... and as many pixels added below, in one pause
        for x in range(int(xs.min()), int(xs.max()) + 1):
            if bitten and layer.data[y, x] == 0:
                layer.data_setitem((np.array([y]), np.array([x])), label)
                bitten -= 1
    assert (layer.data == label).sum() == table.loc[label, "area"]
    qtbot.waitUntil(lambda: "edited" in layer.features.columns, timeout=3000)
    row = _rows(layer).loc[label]
    assert row["edited"] and np.isnan(row["confidence"])
    assert row["centroid_y"] == pytest.approx(np.nonzero(layer.data == label)[0].mean())


def test_the_users_own_columns_stay_on_a_repainted_nucleus(result, qtbot):
    layer, table = result
    layer.features = layer.features.assign(cell_type="tumour", checked=True)
    label = int(table.index[0])
    y, x = (int(v) for v in table.loc[label, ["centroid_y", "centroid_x"]])
    layer.paint((y, x + 12), label)
    qtbot.waitUntil(lambda: "edited" in layer.features.columns, timeout=3000)
    row = _rows(layer).loc[label]
    assert row["cell_type"] == "tumour" and row["checked"] and row["edited"] and np.isnan(row["confidence"])
    assert layer.features["checked"].dtype == bool


def test_an_empty_result_gets_rows_for_painted_nuclei(viewer, qtbot):
    labels = np.zeros((64, 64), np.int32)
    table = measure(labels, labels.astype(np.float32), labels.astype(np.float32), labels.astype(np.float32))
    [layer] = put_layers(viewer, [(labels, {"name": "empty nuclei", "features": label_features(table)}, "labels")])
    layer.paint((10, 10), 1)
    layer.paint((40, 40), 2)
    qtbot.waitUntil(lambda: len(layer.features) == 2, timeout=3000)
    assert _rows(layer)["edited"].all()


def test_a_table_edited_before_it_was_followed_is_brought_in_line(viewer, qtbot):
    image, labels = synthetic_nuclei((96, 96), n_nuclei=6, touching=0.0, seed=4)
    ones = np.ones(labels.shape, np.float32)
    table = measure(labels, image, ones, ones * 0.2)
    gone = int(table["label"].iloc[0])
    layer = viewer.add_labels(np.where(labels == gone, 0, labels).astype(np.int32), features=label_features(table))
    assert live_table.follow_edits(layer) and live_table.up_to_date(layer)
    assert gone not in _rows(layer).index and len(layer.features) == len(table) - 1


def test_another_tools_table_is_left_as_it_is(viewer, qtbot):
    labels = np.zeros((64, 64), np.int32)
    labels[5:15, 5:15], labels[30:40, 30:40] = 2, 1
    table = pd.DataFrame({"label": [2, 1], "area": [100, 100], "cell_type": ["a", "b"]})
    [layer] = put_layers(viewer, [(labels, {"name": "theirs", "features": table}, "labels")])
    before = layer.features.copy()
    layer.paint((50, 50), 3)
    qtbot.wait(2 * live_table.DELAY_MS)
    assert not live_table.up_to_date(layer)
    pd.testing.assert_frame_equal(layer.features, before)


def test_next_goes_on_after_the_nucleus_just_erased(viewer, result, qtbot):
    layer, table = result
    widget = ReviewWidget(viewer)
    widget._layer.value = layer
    order = widget.rows["label"].astype(int).tolist()
    for _ in range(3):
        widget.next()
    layer.fill(tuple(np.argwhere(layer.data == order[2])[0]), 0)  # the third one was debris
    qtbot.waitUntil(lambda: order[2] not in widget.rows["label"].tolist(), timeout=3000)
    widget.next()
    assert layer.selected_label == order[3]


def test_the_review_list_watches_the_new_result_beside_a_corrected_one(viewer, result, qtbot):
    from napari_nucleiseg._napari.layer_output import keep_edited_labels

    layer, table = result
    widget = ReviewWidget(viewer)
    layer.paint((4, 4), 99)
    new = [(np.asarray(layer.data).copy(), {"name": "cells nuclei", "features": layer.features}, "labels")]
    assert keep_edited_labels(viewer, new) == ["cells nuclei (corrected)"]
    [fresh] = put_layers(viewer, new)
    assert widget._layer.value is fresh and widget._watched is fresh


def test_next_starts_from_the_top_of_another_layers_list(viewer, result):
    layer, table = result
    other = viewer.add_labels(np.asarray(layer.data).copy(), name="other nuclei", features=layer.features.copy())
    widget = ReviewWidget(viewer)
    widget._layer.value = layer
    for _ in range(3):
        widget.next()
    widget._layer.value = other
    widget.next()
    assert other.selected_label == int(widget.rows.iloc[0]["label"])


def test_an_undo_after_the_user_set_a_column_still_gives_the_models_row(result, qtbot):
    layer, table = result
    label = int(table.index[0])
    y, x = (int(v) for v in table.loc[label, ["centroid_y", "centroid_x"]])
    layer.paint((y, x + 12), label)
    qtbot.waitUntil(lambda: "edited" in layer.features.columns, timeout=3000)
    layer.features = layer.features.assign(cell_class="tumour")  # typed in by the user
    layer.undo()
    row = _rows(layer).loc[label]  # at once: Ctrl+Z then Ctrl+S saves this
    assert row["confidence"] == table.loc[label, "confidence"] and not row["edited"]
    assert row["cell_class"] == "tumour"


def test_without_napari_histories_an_undo_is_caught_after_the_pause(result, qtbot, monkeypatch):
    layer, table = result
    monkeypatch.setattr(live_table, "_history", lambda layer: object())  # a napari that keeps them elsewhere
    label = int(table.index[2])
    layer.fill(tuple(np.argwhere(layer.data == label)[0]), 0)
    qtbot.waitUntil(lambda: label not in _rows(layer).index, timeout=3000)
    layer.undo()
    assert label not in _rows(layer).index  # not at once: every refresh would count the labels
    qtbot.waitUntil(lambda: label in _rows(layer).index, timeout=3000)
    assert _rows(layer).loc[label, "confidence"] == table.loc[label, "confidence"]
