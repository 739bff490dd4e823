"""The Fine-tune Model widget: training through napari, cancel, safeguards, segment again, model management."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from napari_nucleiseg import zoo
from napari_nucleiseg._napari import finetune_widget as fw
from napari_nucleiseg._napari.finetune_widget import FinetuneWidget
from napari_nucleiseg._napari.finetune_work import rectangles_on, training_set
from napari_nucleiseg.inference.pipeline import segment
from napari_nucleiseg.models import build

WAIT_MS = 120_000


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return zoo.save_user_model("tiny", build("unet", base=8, depth=3), "unet", {"base": 8, "depth": 3},
                               {"description": "tiny test model"})


@pytest.fixture
def messages(monkeypatch):
    shown = {"error": [], "info": []}
    monkeypatch.setattr(fw, "show_error", lambda msg: shown["error"].append(msg))
    monkeypatch.setattr(fw, "show_info", lambda msg: shown["info"].append(msg))
    return shown


@pytest.fixture
def setup(viewer, small_field, tiny, messages):
    img, lab = small_field
    image = viewer.add_image(img, name="cells", scale=(0.5, 0.5))
    labels = viewer.add_labels(lab, name="cells nuclei", scale=(0.5, 0.5))
    widget = FinetuneWidget(viewer)
    widget._base.value = "tiny"
    widget._device.value = "cpu"
    widget._steps.value = 4
    widget._image.value = image
    widget._labels_layer.value = labels
    return viewer, widget, image, labels


def _wait_done(qtbot, widget):
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)


def test_fine_tune_through_the_widget_makes_a_user_model_that_segments(qtbot, setup, small_field):
    viewer, widget, image, labels = setup
    assert widget._name.value == "tiny-finetuned"
    assert "CPU" in widget._device_info.value
    worker = widget.start()
    assert worker is not None and widget.running
    _wait_done(qtbot, widget)
    res = widget.last_result
    assert res is not None and widget.last_error is None
    assert res.name == "tiny-finetuned" and res.steps_done == 4
    assert widget.plot.steps == [1, 2, 3, 4]  # the live curve got every step
    assert widget.scroll_area.widget().minimumSizeHint().width() <= 365  # result texts wrap (dock: 380 px)
    assert widget._progress.value == 1000
    entry = zoo.get_entry(res.name)
    assert entry.user and entry.card["parent"] == "tiny"
    assert entry.card["finetune"]["settings"]["blend"] == widget._blend.value == 0.5  # the default
    assert entry.card["finetune"]["images"][0]["name"] == "cells / cells nuclei"
    assert res.name in widget._base.choices and res.name in widget.manager.model.choices
    seg = segment(small_field[0], model=res.name, device="cpu")
    assert seg.labels.shape == small_field[1].shape
    assert widget._name.value == "tiny-finetuned-2"  # the next suggestion is free


def test_new_model_appears_in_a_docked_segment_widget(qtbot, setup):
    from napari_nucleiseg._napari.segment_widget import SegmentWidget

    viewer, widget, *_ = setup
    seg_widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(seg_widget, name="Segment Nuclei")
    assert "tiny-finetuned" not in seg_widget._model.choices
    widget.start()
    _wait_done(qtbot, widget)
    assert widget.last_result.name in seg_widget._model.choices


def test_cancel_keeps_a_usable_model(qtbot, setup, small_field):
    viewer, widget, *_ = setup
    widget._steps.value = 100000
    widget.start()
    qtbot.waitUntil(lambda: len(widget.plot.steps) >= 2, timeout=WAIT_MS)
    widget.cancel()
    _wait_done(qtbot, widget)
    res = widget.last_result
    assert res is not None and res.cancelled and 2 <= res.steps_done < 100000
    assert "cancelled" in widget._status.value
    seg = segment(small_field[0], model=res.name, device="cpu")
    assert seg.labels.shape == small_field[1].shape


def test_validation_pair_gives_a_validation_curve(qtbot, setup):
    viewer, widget, image, labels = setup
    widget._val_image.value = image
    widget._val_labels.value = labels
    widget.start()
    _wait_done(qtbot, widget)
    assert widget.plot.val_steps[0] == 0 and widget.plot.val_steps[-1] == 4
    assert widget.last_result.base_score is not None


def test_shape_mismatch_is_reported_and_nothing_starts(qtbot, setup, messages):
    viewer, widget, image, labels = setup
    wrong = viewer.add_labels(np.asarray(labels.data)[:100, :90], name="cropped")
    widget._labels_layer.value = wrong
    assert widget.start() is None
    assert "do not match" in widget._status.value and messages["error"]
    assert widget.worker is None
    assert [e.name for e in zoo.list_models() if e.user] == ["tiny"]


def test_empty_labels_and_taken_name_are_reported(qtbot, setup, messages):
    viewer, widget, image, labels = setup
    empty = viewer.add_labels(np.zeros_like(labels.data), name="empty")
    widget._labels_layer.value = empty
    widget.start()
    _wait_done(qtbot, widget)
    assert widget.last_result is None and "no nuclei" in widget.last_error
    widget._labels_layer.value = labels
    widget._name.value = "tiny"
    widget.start()
    _wait_done(qtbot, widget)
    assert "exists already" in widget.last_error
    assert any("exists already" in m for m in messages["error"])


def test_rectangles_restrict_training_to_the_corrected_area(setup):
    viewer, widget, image, labels = setup
    # shapes in world coordinates: the image has pixel size 0.5
    shapes = viewer.add_shapes([np.array([[5, 10], [5, 40], [30, 40], [30, 10]])], shape_type="rectangle",
                               name="corrected")
    assert rectangles_on(shapes, image) == [(10, 20, 60, 80)]
    ts = training_set([(image, labels)], shapes)
    assert ts.regions == [(10, 20, 60, 80)]


def test_several_pairs(setup, small_field):
    viewer, widget, image, labels = setup
    img2 = viewer.add_image(small_field[0][::-1].copy(), name="flipped")
    lab2 = viewer.add_labels(small_field[1][::-1].copy(), name="flipped nuclei")
    widget.add_pair(image, labels)
    widget.add_pair(img2, lab2)
    widget.add_pair(img2, lab2)  # no duplicates
    assert len(widget.pairs) == 2 and len(widget._pair_list.choices) == 2
    viewer.layers.remove(lab2)
    assert widget.pairs == [(image, labels)]


def test_segment_again_never_overwrites_the_corrections(qtbot, setup):
    viewer, widget, image, labels = setup
    before = np.asarray(labels.data).copy()
    widget.start()
    _wait_done(qtbot, widget)
    assert widget._again_btn.enabled
    widget.segment_again()
    _wait_done(qtbot, widget)
    name = f"cells nuclei ({widget.last_result.name})"
    assert name in viewer.layers
    out = viewer.layers[name]
    assert tuple(out.scale) == (0.5, 0.5)
    assert "label" in out.features.columns
    np.testing.assert_array_equal(labels.data, before)


def test_model_manager_rename_export_import_delete(setup, tmp_path):
    viewer, widget, *_ = setup
    m = widget.manager
    m.rename("tiny", "tiny-renamed")
    assert "tiny-renamed" in widget._base.choices and "tiny" not in m.model.choices
    path = m.export("tiny-renamed", tmp_path / "model.pt")
    entry = m.import_file(path, "tiny-copy")
    assert entry.user and "tiny-copy" in m.model.choices
    m.delete("tiny-renamed")
    assert [e.name for e in zoo.list_models() if e.user] == ["tiny-copy"]
    m.new_name.value = "bad name!"
    m.model.value = "tiny-copy"
    m._rename_clicked()
    assert "invalid model name" in widget._status.value


def test_keep_working_on_hands_other_images_to_the_replay(qtbot, setup, monkeypatch):
    from napari_nucleiseg._napari import finetune_work
    from napari_nucleiseg.synthetic import synthetic_nuclei

    viewer, widget, image, labels = setup
    other = viewer.add_image(synthetic_nuclei((64, 80), n_nuclei=4, seed=9)[0], name="other condition")
    captured = {}
    real = finetune_work._finetune.fine_tune

    def spy(*args, **kwargs):
        captured.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(finetune_work._finetune, "fine_tune", spy)
    widget._keep.value = [other, image]  # the training image itself is not replayed
    widget.start()
    _wait_done(qtbot, widget)
    assert widget.last_error is None
    assert len(captured["replay_images"]) == 1 and captured["replay_images"][0].shape == (64, 80)


def test_keep_of_the_change_reaches_fine_tuning(qtbot, setup):
    _, widget, _, _ = setup
    widget._blend.value = 1.0
    widget.start()
    _wait_done(qtbot, widget)
    assert widget.last_error is None
    assert zoo.get_entry(widget.last_result.name).card["finetune"]["settings"]["blend"] == 1.0


def test_model_manager_exports_to_bioimageio_in_a_worker(qtbot, setup, messages, tmp_path, monkeypatch,
                                                          bioimageio_extra):
    from qtpy.QtWidgets import QFileDialog

    viewer, widget, *_ = setup
    m = widget.manager
    m.model.value = "tiny"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "tiny"), ""))
    m._bioimageio_clicked()  # the button: a save dialog, then the export in a worker
    assert m.export_worker is not None and not m.bioimageio_btn.enabled  # napari's event loop stays free
    assert m.export_bioimageio("tiny", tmp_path / "again.zip") is None  # one export at a time
    assert messages["error"] == ["a bioimage.io export is running already"]
    qtbot.waitUntil(lambda: m.export_worker is None, timeout=WAIT_MS)
    assert (tmp_path / "tiny.zip").is_file() and m.bioimageio_btn.enabled
    assert messages["info"][-1] == (f"exported 'tiny' to {tmp_path / 'tiny.zip'} (a bioimage.io package that "
                                    "passes bioimageio test)")
    m.export_bioimageio("tiny", tmp_path / "tiny.pt")  # a failure: one message, nothing written
    qtbot.waitUntil(lambda: m.export_worker is None, timeout=WAIT_MS)
    assert messages["error"][-1] == f"Cannot export 'tiny' to bioimage.io: {tmp_path / 'tiny.pt'}: a bioimage.io " \
                                    "package is a .zip file"
    assert len(messages["error"]) == 2 and not (tmp_path / "tiny.pt").exists()


def test_trains_on_the_plane_each_stack_shows(viewer):
    rng = np.random.default_rng(0)
    a = viewer.add_image(rng.random((3, 64, 64)).astype(np.float32), name="A")
    a_labels = viewer.add_labels(np.stack([np.full((64, 64), z + 1, np.int32) for z in range(3)]), name="A nuclei")
    viewer.add_image(rng.random((5, 64, 64)).astype(np.float32), name="B", translate=(-2, 0, 0))
    viewer.dims.set_point(0, 0.0)  # world z 0: plane 0 of A (plane 2 of B, and step 2 of the viewer)
    widget = FinetuneWidget(viewer)
    train = training_set([(a, a_labels)], None, widget._current_slice)
    assert int(train.pairs[0][1].max()) == 1


def test_remove_a_pair_after_a_rename(viewer, small_field, messages):
    img, lab = small_field
    image, labels = viewer.add_image(img, name="cells"), viewer.add_labels(lab, name="cells nuclei")
    widget = FinetuneWidget(viewer)
    widget.add_pair(image, labels)
    labels.name = "cells corrected"
    assert "cells corrected" in widget._pair_list.native.item(0).text()  # the list shows the new name
    widget._pair_list.value = list(widget._pair_list.choices)
    widget._remove_pairs()
    assert widget.pairs == []


def test_segment_again_never_overwrites_the_labels_trained_on(viewer, qtbot, small_field, tiny, messages):
    img, lab = small_field
    image = viewer.add_image(img, name="cells")
    corrected = viewer.add_labels(lab.copy(), name="cells nuclei")
    other = viewer.add_labels(np.zeros_like(lab), name="scratch")
    widget = FinetuneWidget(viewer)
    widget._base.value, widget._device.value, widget._steps.value = "tiny", "cpu", 2
    widget._image.value, widget._labels_layer.value = image, corrected
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    widget._labels_layer.value = other  # the user looks at another Labels layer since
    before = corrected.data.copy()
    widget.segment_again()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert np.array_equal(corrected.data, before)
    assert any(layer.name.startswith("cells nuclei (") for layer in viewer.layers)


def test_segment_again_can_be_cancelled(viewer, qtbot, tiny, messages):
    from napari_nucleiseg.synthetic import synthetic_nuclei

    image = viewer.add_image(synthetic_nuclei((768, 768), n_nuclei=60, seed=3)[0], name="big")
    widget = FinetuneWidget(viewer)
    widget._device.value = "cpu"
    widget.last_result = SimpleNamespace(name="tiny")
    before = [layer.name for layer in viewer.layers]
    assert widget.segment_again(image) is not None and widget._cancel_btn.enabled
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert [layer.name for layer in viewer.layers] == before
    assert "cancelled" in widget._status.value and widget._again_btn.enabled


def test_a_lazy_layer_is_read_in_the_worker_not_on_the_gui_thread(qtbot, setup, small_field):
    import threading

    import dask
    import dask.array as da

    viewer, widget, image, labels = setup
    img, _ = small_field
    threads = []

    def read(block):
        threads.append(threading.current_thread())
        return block

    stack = da.from_array(np.stack([img, img]), chunks=(1, *img.shape)).map_blocks(read, dtype=img.dtype)
    lazy = viewer.add_image(stack, name="lazy", scale=(1, 0.5, 0.5))
    threads.clear()  # napari drew the layer
    widget._image.value = lazy
    widget._labels_layer.value = labels
    with dask.config.set(scheduler="synchronous"):  # dask reads in the thread that asks
        assert widget.start() is not None
        assert threading.main_thread() not in threads
        _wait_done(qtbot, widget)
    assert widget.last_error is None and widget.last_result is not None
    assert threads and threading.main_thread() not in threads


def test_segment_again_keeps_a_result_corrected_since_the_training(viewer, qtbot, small_field, tiny, messages):
    img, _ = small_field
    image = viewer.add_image(img, name="cells")
    fresh = viewer.add_labels(np.zeros(img.shape, np.int32), name="cells nuclei")  # a later result, not a pair
    fresh.paint((8, 8), 777)  # the user corrects it
    painted = np.asarray(fresh.data).copy()
    scratch = viewer.add_labels(np.zeros(img.shape, np.int32), name="scratch")
    widget = FinetuneWidget(viewer)
    widget._device.value = "cpu"
    widget._labels_layer.value = scratch  # the layer trained on was renamed since, as Segment Nuclei does
    widget.last_result = SimpleNamespace(name="tiny")
    assert widget.segment_again(image) is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert fresh.name == "cells nuclei (corrected)" and np.array_equal(fresh.data, painted)
    assert viewer.layers["cells nuclei"] is not fresh
    assert "cells nuclei (corrected)" in messages["info"][-1]


def test_closing_the_window_stops_fine_tuning_without_saving_a_model(qtbot, setup):
    viewer, widget, *_ = setup
    widget._steps.value = 100_000
    before = {e.name for e in zoo.list_models()}
    steps = []
    widget._relay.progressed.connect(lambda p: steps.append(p.step))
    assert widget.start() is not None
    qtbot.waitUntil(lambda: any(steps), timeout=WAIT_MS)
    viewer.window._task_status_manager.cancel_all()  # what closing the window does
    _wait_done(qtbot, widget)
    # Cancel keeps the best weights so far; a closed window leaves no model nobody saw
    assert {e.name for e in zoo.list_models()} == before and widget.last_result is None


def test_long_names_stay_apart_and_the_whole_name_is_in_the_tooltip(viewer, small_field, tiny):
    from qtpy.QtWidgets import QComboBox

    img, lab = small_field
    image = viewer.add_image(img, name="synthetic fluorescence")
    viewer.add_labels(lab, name="synthetic fluorescence ground truth", visible=False)
    corrected = viewer.add_labels(lab.copy(), name="synthetic fluorescence nuclei (corrected)")  # kept by Segment
    viewer.add_labels(lab, name="synthetic fluorescence nuclei")  # its new result
    widget = FinetuneWidget(viewer)
    choices = widget._layer_choices(type(corrected))()
    shown = [name for name, _ in choices]
    assert choices[0][1] is corrected and shown[-1].endswith("ground truth")  # hidden last
    assert shown[0].endswith("(corrected)") and len(set(shown)) == 3 and max(map(len, shown)) <= 25
    assert widget._labels_layer.value is corrected and widget._image.value is image
    combo = widget._labels_layer.native
    combo = combo if isinstance(combo, QComboBox) else combo.findChild(QComboBox)
    assert combo.toolTip().startswith("synthetic fluorescence nuclei (corrected)")
    widget._labels_layer.value = viewer.layers["synthetic fluorescence nuclei"]
    assert combo.toolTip().startswith("synthetic fluorescence nuclei") and "(corrected)" not in combo.toolTip()


def test_the_first_image_and_labels_stay_a_pair(viewer, small_field, tiny):
    img, lab = small_field
    a = viewer.add_image(img, name="A")
    a_labels = viewer.add_labels(lab, name="A nuclei")
    viewer.add_image(img, name="B")
    viewer.add_labels(lab.copy(), name="B nuclei").paint((5, 5), 9)  # painted in: still not A's labels
    widget = FinetuneWidget(viewer)
    assert widget._image.value is a and widget._labels_layer.value is a_labels


def test_cancel_before_the_first_step_is_a_message_not_an_error(qtbot, setup, messages):
    viewer, widget, *_ = setup
    assert widget.start() is not None
    widget.cancel()  # while the base model is still being prepared
    _wait_done(qtbot, widget)
    assert widget.last_result is None and not messages["error"]
    assert "cancelled before the first step" in messages["info"][-1]


def test_training_on_a_result_nobody_corrected_says_so_and_a_painted_one_does_not(viewer, qtbot, small_field, tiny,
                                                                               messages):
    from napari_nucleiseg._napari.layer_output import put_layers

    img, lab = small_field
    image = viewer.add_image(img, name="cells")
    [result] = put_layers(viewer, [(lab.copy(), {"name": "cells nuclei"}, "labels")])  # as Segment puts it
    widget = FinetuneWidget(viewer)
    widget._base.value, widget._device.value, widget._steps.value = "tiny", "cpu", 2
    widget._image.value, widget._labels_layer.value = image, result
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert any("'cells nuclei' is the model's result, not corrected since" in m for m in messages["info"])

    messages["info"].clear()
    result.mode, result.brush_size = "paint", 5
    result.paint((5, 5), int(lab.max()) + 1)  # a correction
    widget._name.value = "tiny-corrected"
    assert widget.start() is not None
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert not any("not corrected since" in m for m in messages["info"])
