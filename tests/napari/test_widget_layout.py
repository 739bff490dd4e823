"""Every widget fits a 1280x800 screen docked alone, stays usable two at a time, labels every field,
and shows a failed worker as one message (never a crash)."""

import numpy as np
import pandas as pd
import pytest
from magicgui.widgets import Container
from magicgui.widgets.bases import ValueWidget
from qtpy.QtWidgets import QApplication

from napari_nucleiseg._napari import evaluate_widget as ew
from napari_nucleiseg._napari.evaluate_work import default_pair
from napari_nucleiseg._napari.segment_work import output_names

WIDGETS = ["Segment Nuclei", "Evaluate Against Ground Truth", "Review Least Certain Nuclei", "Fine-tune Model",
           "Batch Segment Folder"]
SCREEN = (1280, 800)
MAX_DOCK_WIDTH = 400  # leaves the canvas most of a 1280 px screen


def assert_fits(widget):
    """Nothing is cut off on the right: the widget's content is no wider than its scroll area's view."""
    _settle()
    body = widget.scroll_area.widget()
    assert body.minimumSizeHint().width() <= widget.scroll_area.viewport().width(), type(widget).__name__


def _settle(n=10):
    for _ in range(n):
        QApplication.processEvents()


def _fields(container):
    """Every value field inside ``container`` with the container that lays it out (sections included)."""
    for w in container:
        inner = getattr(w, "inner", None)  # a collapsible section (_common.section)
        if inner is not None:
            yield from _fields(inner)
        if isinstance(w, Container):
            yield from _fields(w)
        elif isinstance(w, ValueWidget) and w.label and not w.name.startswith("_"):
            yield container, w


def _check_labels(widget):
    """Each value field (combo box, spin box, text, list, progress) shows its label beside it."""
    from magicgui.widgets import CheckBox, PushButton
    from magicgui.widgets import Label as TextLabel

    fields = [(p, f) for p, f in _fields(widget) if not isinstance(f, (CheckBox, PushButton, TextLabel))]
    assert len(fields) >= 2
    for parent, field in fields:
        # ``is True``: an attribute named ``_labels`` (once a ComboBox) must not stand in for the flag
        assert parent.labels is True, f"{field.label!r} is in a container without labels"
        labeled = field._labeled_widget()
        assert labeled is not None, f"{field.label!r} has no label"
        label = labeled._label_widget
        assert label.value == field.label and not label.native.isHidden(), field.label


@pytest.fixture
def window(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.resize(*SCREEN)
    _settle()
    return viewer


@pytest.mark.parametrize("name", WIDGETS)
@pytest.mark.parametrize("with_layers", [False, True], ids=["empty viewer", "sample open"])
def test_widget_fits_1280x800_and_labels_every_field(window, name, with_layers):
    if with_layers:
        window.open_sample("napari-nucleiseg", "synthetic_nuclei")
    dock, widget = window.window.add_plugin_dock_widget("napari-nucleiseg", name)
    _settle()
    hint = dock.minimumSizeHint()
    assert hint.width() <= MAX_DOCK_WIDTH and hint.height() <= 300, (hint.width(), hint.height())
    qt_window = window.window._qt_window
    assert (qt_window.width(), qt_window.height()) == SCREEN  # the widget did not force a larger window
    assert_fits(widget)
    _check_labels(widget)


def test_two_widgets_docked_share_the_screen(window):
    window.open_sample("napari-nucleiseg", "synthetic_nuclei")
    docks = [window.window.add_plugin_dock_widget("napari-nucleiseg", name)[0]
             for name in ("Segment Nuclei", "Fine-tune Model")]
    _settle()
    assert sum(d.minimumSizeHint().height() for d in docks) <= SCREEN[1] - 150
    assert window.window._qt_window.height() == SCREEN[1]
    assert all(d.height() >= 150 for d in docks)


def test_batch_table_does_not_widen_the_dock(window, monkeypatch):
    monkeypatch.setattr("napari_nucleiseg._napari.batch_widget.show_info", lambda m: None)
    dock, widget = window.window.add_plugin_dock_widget("napari-nucleiseg", "Batch Segment Folder")
    summary = pd.DataFrame({"file": [f"plate1_well{i:02d}_field{i:03d}_a_very_long_acquisition_name.tif"
                                     for i in range(8)], "status": "ok", "nuclei": 12, "mean_area": 231.456,
                            "mean_confidence": 0.8123, "error": ""})
    widget._table.value = widget._table_data(summary)
    from napari_nucleiseg._napari.batch_widget import _fit_table

    _fit_table(widget._table.native)
    widget._table.visible = True
    _settle()
    assert dock.minimumSizeHint().width() <= MAX_DOCK_WIDTH and dock.width() <= MAX_DOCK_WIDTH + 20
    headers = [widget._table.native.horizontalHeaderItem(c).text() for c in range(6)]
    assert headers == ["File", "Status", "Nuclei", "Mean area", "Confidence", "Error"]
    assert widget._table.native.item(0, 0).toolTip() == summary["file"][0]  # full name on hover


def test_evaluate_with_mismatched_layers_reports_once_and_the_app_survives(window, qtbot, monkeypatch):
    shown = []
    monkeypatch.setattr(ew, "show_error", shown.append)
    monkeypatch.setattr(ew, "show_info", lambda m: None)
    window.open_sample("napari-nucleiseg", "synthetic_nuclei")  # 256x256
    window.open_sample("napari-nucleiseg", "crowded_nuclei")  # 384x384
    _, widget = window.window.add_plugin_dock_widget("napari-nucleiseg", "Evaluate Against Ground Truth")
    widget._pred.value = window.layers["synthetic fluorescence ground truth"]
    widget._gt.value = window.layers["crowded field ground truth"]
    widget._button.native.click()
    assert len(shown) == 1 and "different shapes" in shown[0] and widget.worker is None
    assert widget._button.enabled and widget._result.value == shown[0]

    # an unexpected failure inside the worker: one readable message, no exception escapes
    def broken(*_a, **_k):
        raise RuntimeError("boom")

    monkeypatch.setattr(ew, "evaluate_labels", broken)
    pred = window.add_labels(window.layers["crowded field ground truth"].data.copy(), name="crowded field nuclei")
    widget._pred.value = pred
    assert widget._gt.value is window.layers["crowded field ground truth"]  # paired with its own image
    errored = []
    worker = widget.start()
    worker.errored.connect(errored.append)
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    assert len(shown) == 2 and "Cannot evaluate: RuntimeError: boom" == shown[1] and not errored
    assert widget._button.enabled and not widget._cancel_btn.enabled


def test_evaluate_defaults_pair_layers_of_the_same_image(window):
    window.open_sample("napari-nucleiseg", "crowded_nuclei")
    window.open_sample("napari-nucleiseg", "synthetic_nuclei")
    truth = window.layers["crowded field ground truth"]
    pred = window.add_labels(np.zeros_like(truth.data), name="crowded field nuclei")
    _, widget = window.window.add_plugin_dock_widget("napari-nucleiseg", "Evaluate Against Ground Truth")
    assert widget._pred.value is pred and widget._gt.value is truth
    other = window.add_labels(np.zeros((256, 256), np.int32), name="synthetic fluorescence nuclei")
    # the pair the widget picked gives way to the newer prediction and the ground truth of its image
    assert widget._pred.value is other and widget._gt.value is window.layers["synthetic fluorescence ground truth"]
    widget._pred.value = pred  # the user's choice
    assert widget._gt.value is truth
    window.add_labels(np.zeros((256, 256), np.int32), name="synthetic fluorescence labels")
    assert widget._pred.value is pred and widget._gt.value is truth  # is kept
    assert default_pair([truth]) == (None, None)  # ground truth is never offered as the prediction


def test_evaluate_cancel_adds_nothing(window, qtbot, monkeypatch):
    import time

    from napari_nucleiseg.evaluation.metrics import evaluate_labels

    def slow(gt, pred, cancel):  # the real scoring, once Cancel has been pressed
        t0 = time.monotonic()
        while not cancel() and time.monotonic() - t0 < 20:
            time.sleep(0.01)
        return evaluate_labels(gt, pred, cancel=cancel)

    monkeypatch.setattr(ew, "evaluate_labels", slow)
    gt = np.zeros((6, 64, 64), np.int32)
    gt[:, 10:20, 10:20] = 1
    window.add_labels(gt, name="stack ground truth")
    window.add_labels(gt.copy(), name="stack nuclei")
    _, widget = window.window.add_plugin_dock_widget("napari-nucleiseg", "Evaluate Against Ground Truth")
    assert widget.start() is not None and widget._cancel_btn.enabled
    widget._cancel_btn.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=30000)
    assert "stack nuclei errors" not in window.layers and widget.metrics is None
    assert widget._result.value.startswith("Cancelled") and widget._button.enabled


def test_output_names_do_not_double_up():
    assert output_names("cells")["nuclei"] == "cells nuclei"
    assert output_names("synthetic nuclei")["nuclei"] == "synthetic nuclei labels"
    assert output_names("crowded nuclei")["probability"] == "crowded nuclei probability"
