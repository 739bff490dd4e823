"""Segment Nuclei widget: docking, a full run, replacement, scale, bad input, cancel, stacks."""

import numpy as np
import pandas as pd
import pytest

from napari_nucleiseg._napari.segment_widget import SegmentWidget
from napari_nucleiseg._napari.segment_work import (
    CURRENT_SLICE,
    ImageInput,
    segment_image,
)

FEATURES = ["index", "label", "area", "centroid_y", "centroid_x", "mean_intensity", "confidence"]


def _dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-nucleiseg", "Segment Nuclei")
    assert isinstance(widget, SegmentWidget)
    return widget


def _run_and_wait(qtbot, widget, layer=None, timeout=60000):
    worker = widget.run(layer)
    assert worker is not None
    qtbot.waitUntil(lambda: not widget.running, timeout=timeout)


def test_work_function_without_viewer(small_field):
    image, _ = small_field
    seen = []
    out = segment_image(ImageInput(image, "cells", scale=(0.5, 0.5), translate=(10.0, 20.0)),
                        progress=lambda f, m: seen.append(f))
    assert out.ok, out.error
    names = [kw["name"] for _, kw, _ in out.layers]
    assert names == ["cells probability", "cells uncertainty", "cells nuclei"]
    labels, kw, kind = out.layers[-1]
    assert kind == "labels" and labels.shape == image.shape and labels.dtype == np.int32
    assert out.n_nuclei == int(len(np.unique(labels))) - 1 > 0
    feats = kw["features"]
    assert set(FEATURES) <= set(feats.columns)
    assert (feats["index"] == feats["label"]).all()
    assert "area_physical" in feats.columns  # pixel size 0.5 was used
    for _, kw, _ in out.layers:
        assert kw["scale"] == (0.5, 0.5) and kw["translate"] == (10.0, 20.0)
    assert seen and seen[-1] == 1.0


def test_work_function_errors_come_back_as_messages():
    out = segment_image(ImageInput(np.full((64, 64), np.nan, np.float32), "bad"))
    assert not out.ok and "NaN" in out.error and out.layers == []
    out = segment_image(ImageInput(np.zeros((2, 3, 32, 32)), "4d"))
    assert "dimensions" in out.error
    out = segment_image(ImageInput(np.zeros((64, 64)), "x"), model="no-such-model")
    assert "no-such-model" in out.error


def test_widget_run_adds_layers_with_scale_and_features(viewer, qtbot, small_field, notifications):
    image, _ = small_field
    viewer.add_image(image, name="cells", scale=(0.25, 0.5), translate=(3.0, 4.0))
    widget = _dock(viewer)
    assert widget._image.value is viewer.layers["cells"]
    assert "Runs on:" in widget._device_info.value
    _run_and_wait(qtbot, widget)
    assert not notifications["error"], notifications
    for suffix in ("nuclei", "probability", "uncertainty"):
        layer = viewer.layers[f"cells {suffix}"]
        np.testing.assert_allclose(layer.scale, (0.25, 0.5))
        np.testing.assert_allclose(layer.translate, (3.0, 4.0))
    nuclei = viewer.layers["cells nuclei"]
    assert nuclei.data.max() > 0
    assert set(FEATURES) <= set(nuclei.features.columns)
    assert len(nuclei.features) == len(np.unique(nuclei.data)) - 1
    assert "Found" in widget._status.value and widget._progress.value == 100

    # running again replaces the three layers instead of adding more
    n_layers = len(viewer.layers)
    widget._min_size.value = 60
    _run_and_wait(qtbot, widget)
    assert len(viewer.layers) == n_layers
    assert viewer.layers["cells nuclei"].features["area"].min() >= 60
    settings = viewer.layers["cells nuclei"].metadata["nucleiseg"]
    # the synthetic field is noisier than the training images: smoothed, and the status says so
    assert settings["denoise"] is True and settings["smoothing"] > 0
    assert "smoothed" in widget._status.value

    # the Smooth noisy images box reaches segment()
    widget._denoise.value = False
    _run_and_wait(qtbot, widget)
    settings = viewer.layers["cells nuclei"].metadata["nucleiseg"]
    assert settings["denoise"] is False and settings["smoothing"] == 0.0
    assert "smoothed" not in widget._status.value


def test_status_says_when_the_model_is_unsure_of_the_image(viewer, qtbot, notifications, monkeypatch):
    from napari_nucleiseg.inference import measure
    from napari_nucleiseg.synthetic import synthetic_nuclei

    viewer.add_image(synthetic_nuclei((128, 128), n_nuclei=6, seed=2)[0], name="field")
    widget = _dock(viewer)
    widget._model.value = "unet16"
    _run_and_wait(qtbot, widget, viewer.layers["field"])
    assert "Found" in widget._status.value and "unsure" not in widget._status.value
    monkeypatch.setattr(measure, "UNSURE_BELOW", 1.01)  # every image is then one it is unsure of
    _run_and_wait(qtbot, widget, viewer.layers["field"])
    assert not notifications["error"], notifications
    assert "The model is unsure of this image" in widget._status.value


def test_status_says_when_uneven_light_was_evened_out(viewer, qtbot, notifications):
    from napari_nucleiseg.synthetic import synthetic_nuclei

    image, _ = synthetic_nuclei((256, 256), n_nuclei=20, brightfield=True, seed=1)
    lit = (image * np.linspace(1.0, 0.25, 256, dtype=np.float32)).astype(image.dtype)  # a dark right side
    viewer.add_image(lit, name="uneven")
    widget = _dock(viewer)
    widget._model.value = "unet16"
    _run_and_wait(qtbot, widget, viewer.layers["uneven"])
    assert not notifications["error"], notifications
    settings = viewer.layers["uneven nuclei"].metadata["nucleiseg"]
    assert settings["image_kind"] == "brightfield" and settings["evened"] == 1.0
    assert "evened out" in widget._status.value
    assert viewer.layers["uneven nuclei"].data.max() >= 15
    # the Even out uneven light box reaches segment()
    widget._even_light.value = False
    _run_and_wait(qtbot, widget, viewer.layers["uneven"])
    settings = viewer.layers["uneven nuclei"].metadata["nucleiseg"]
    assert settings["even_light"] is False and settings["evened"] == 0.0
    assert "evened out" not in widget._status.value


def test_nucleus_channel_of_an_rgb_composite(viewer, qtbot, notifications):
    from scipy import ndimage as ndi

    from napari_nucleiseg.synthetic import synthetic_nuclei

    nuclei, truth = synthetic_nuclei((256, 256), n_nuclei=25, touching=0.0, seed=7)
    cells = ndi.grey_dilation((truth > 0).astype(np.float32), size=(15, 15)) * 250  # a bright stain around them
    rgb = np.stack([cells, np.zeros_like(cells), nuclei / nuclei.max() * 200], -1).astype(np.uint8)
    viewer.add_image(rgb, name="composite", rgb=True)
    widget = _dock(viewer)
    widget._model.value = "unet16"
    widget._channel.value = 2  # DAPI in blue
    _run_and_wait(qtbot, widget, viewer.layers["composite"])
    assert not notifications["error"], notifications
    nuclei_layer = viewer.layers["composite nuclei"]
    assert nuclei_layer.metadata["nucleiseg"]["channel"] == 2
    assert nuclei_layer.data.shape == (256, 256) and nuclei_layer.data.max() >= 20


@pytest.mark.parametrize("kind", ["labels", "nan", "4d", "channels last"])
def test_bad_input_notifies_and_leaves_layers(viewer, qtbot, notifications, kind):
    widget = SegmentWidget(viewer)
    viewer.add_image(np.ones((64, 64), np.float32), name="good")
    if kind == "labels":
        layer = viewer.add_labels(np.zeros((64, 64), np.int32), name="mask")
    elif kind == "4d":
        layer = viewer.add_image(np.zeros((2, 2, 32, 32), np.float32), name="tzyx")
    elif kind == "channels last":  # napari shows 64 planes of 64 x 2; it gave a broadcasting error
        layer = viewer.add_image(np.ones((64, 64, 2), np.float32), name="two", rgb=False)
    else:
        layer = viewer.add_image(np.full((64, 64), np.nan, np.float32), name="nan")
    before = [(lyr.name, id(lyr)) for lyr in viewer.layers]
    worker = widget.run(layer)
    if worker is not None:  # NaNs are only found while reading the pixels, in the worker
        qtbot.waitUntil(lambda: not widget.running, timeout=30000)
    assert notifications["error"], f"no error shown for {kind}"
    assert layer.name in notifications["error"][0]
    assert [(lyr.name, id(lyr)) for lyr in viewer.layers] == before
    assert widget._run_btn.enabled


def test_empty_image_is_refused_by_the_work_function():
    out = segment_image(ImageInput(np.zeros((0, 32), np.float32), "empty"))
    assert not out.ok and "empty" in out.error


def test_cancel_leaves_no_partial_layer(viewer, qtbot, notifications):
    stack = np.stack(_planes(6))
    viewer.add_image(stack, name="stack")
    widget = SegmentWidget(viewer)
    widget._tta.value = True  # slower, so the run is surely still going when cancelled
    widget.run()
    assert widget.running
    qtbot.waitUntil(lambda: widget._progress.value > 0, timeout=60000)
    widget.cancel()
    qtbot.waitUntil(lambda: not widget.running, timeout=60000)
    assert [lyr.name for lyr in viewer.layers] == ["stack"]
    assert "Cancelled" in widget._status.value and widget._progress.value == 0  # no half-full bar left
    assert notifications["info"] and not notifications["error"]
    assert widget._run_btn.enabled and not widget._cancel_btn.enabled


def _planes(n):
    from napari_nucleiseg.synthetic import synthetic_nuclei

    return [synthetic_nuclei((96, 96), n_nuclei=6, seed=s)[0] for s in range(n)]


def test_stack_each_slice_and_current_slice(viewer, qtbot, notifications):
    viewer.add_image(np.stack(_planes(2)), name="zs", scale=(2.0, 0.5, 0.5))
    widget = SegmentWidget(viewer)
    seen = []
    widget._relay.progressed.connect(lambda fraction, message: seen.append((fraction, message)))
    _run_and_wait(qtbot, widget)
    # progress reached the GUI thread per slice and per tile, in order
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("slice 2/2" in m for _, m in seen)
    nuclei = viewer.layers["zs nuclei"]
    assert nuclei.data.shape == (2, 96, 96)
    np.testing.assert_allclose(nuclei.scale, (2.0, 0.5, 0.5))
    feats = nuclei.features
    assert set(feats["plane"]) == {0, 1}
    assert feats["label"].is_unique  # labels are unique across slices
    assert set(feats["label"]) == set(np.unique(nuclei.data)) - {0}

    viewer.dims.set_current_step(0, 1)
    widget._stacks.value = CURRENT_SLICE
    before = nuclei.data[0].copy()
    widget._min_size.value = widget._min_size.value + 5
    _run_and_wait(qtbot, widget)
    nuclei = viewer.layers["zs nuclei"]
    np.testing.assert_array_equal(nuclei.data[0], before)  # the other plane of the result shown stays
    assert nuclei.data[1].max() > before.max()  # the new plane's labels follow the kept ones
    assert set(nuclei.features["plane"]) == {0, 1} and nuclei.features["label"].is_unique
    assert set(nuclei.features["label"]) == set(np.unique(nuclei.data)) - {0}
    assert (nuclei.features["index"] == nuclei.features["label"]).all()  # napari's row of each label

    nuclei.features = pd.DataFrame()  # a stack result opened without its table (Batch widget)
    _run_and_wait(qtbot, widget)
    nuclei = viewer.layers["zs nuclei"]
    assert set(nuclei.features["label"]) == set(np.unique(nuclei.data[1])) - {0}  # renumbered with the plane
    assert (nuclei.features["index"] == nuclei.features["label"]).all()

    viewer.layers.remove(nuclei)
    _run_and_wait(qtbot, widget)  # no result shown yet: only the current plane
    nuclei = viewer.layers["zs nuclei"]
    assert nuclei.data[0].max() == 0 and nuclei.data[1].max() > 0


def test_refresh_models_lists_new_user_model(viewer):
    import shutil

    from napari_nucleiseg import zoo

    widget = SegmentWidget(viewer)
    default = zoo.list_models()[0]
    assert widget._model.value == default.name
    folder = zoo.user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(default.weights, folder / "my-cells.pt")
    (folder / "my-cells.json").write_text('{"name": "my-cells", "description": "tuned on my cells"}')
    assert "my-cells" not in widget._model.choices
    widget._threshold.value = 0.7
    widget.refresh_models()
    assert widget._threshold.value == 0.7  # the user's setting survives a refresh
    assert "my-cells" in widget._model.choices
    widget._model.value = "my-cells"
    assert "tuned on my cells" in widget._model_info.value and "[user]" in widget._model_info.value
    assert widget._model.native.currentText() == "my-cells [user]"  # the mark the tooltip promises
    assert "paper" not in default.description


def test_rgb_brightfield_layer(viewer, qtbot, notifications):
    from skimage.data import immunohistochemistry

    viewer.add_image(immunohistochemistry()[:128, :128], name="ihc", rgb=True, scale=(0.3, 0.3))
    widget = SegmentWidget(viewer)
    _run_and_wait(qtbot, widget)
    assert not notifications["error"], notifications
    nuclei = viewer.layers["ihc nuclei"]
    assert nuclei.data.shape == (128, 128)
    np.testing.assert_allclose(nuclei.scale, (0.3, 0.3))
    assert viewer.layers["ihc probability"].data.shape == (128, 128)


def test_diameter_field_reads_auto_and_shrinks_large_nuclei(viewer, qtbot, notifications):
    from napari_nucleiseg.synthetic import synthetic_nuclei

    image = synthetic_nuclei(shape=(384, 384), n_nuclei=14, radius=(30, 40), seed=1)[0]
    viewer.add_image(image, name="big")
    widget = _dock(viewer)
    assert widget._diameter.value == 0 and widget._diameter.native.text() == "auto"
    _run_and_wait(qtbot, widget)
    meta = viewer.layers["big nuclei"].metadata["nucleiseg"]
    assert meta["diameter"] == "auto" and meta["zoom"] < 0.7
    assert f"segmented at {meta['zoom']:.2f}x" in widget._status.value
    assert viewer.layers["big nuclei"].data.shape == image.shape

    widget._diameter.value = 15  # at or below the model's size: never rescaled
    _run_and_wait(qtbot, widget)
    meta = viewer.layers["big nuclei"].metadata["nucleiseg"]
    assert meta["diameter"] == 15 and meta["zoom"] == 1.0

    widget._diameter.value = 8  # much smaller than the model's size: enlarged (at most 2x)
    _run_and_wait(qtbot, widget)
    meta = viewer.layers["big nuclei"].metadata["nucleiseg"]
    assert meta["diameter"] == 8 and meta["zoom"] == 2.0
    assert "smaller than the model's training size: segmented at 2.00x" in widget._status.value
    assert viewer.layers["big nuclei"].data.shape == image.shape
    assert not notifications["error"], notifications


def test_a_dask_layer_goes_out_of_core_into_lazy_layers(viewer, qtbot, notifications, tmp_path, monkeypatch):
    import dask.array as da

    from napari_nucleiseg.synthetic import synthetic_mosaic

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # the result folder goes to the user cache
    image, _ = synthetic_mosaic((600, 500))
    layer = viewer.add_image(da.from_array(image, chunks=256), name="plate", scale=(0.5, 0.5))
    widget = _dock(viewer)
    widget._model.value = "unet16"
    _run_and_wait(qtbot, widget, layer, timeout=120000)
    nuclei = viewer.layers["plate nuclei"]
    assert isinstance(np.asarray(nuclei.data[:2, :2]), np.ndarray) and tuple(nuclei.scale) == (0.5, 0.5)
    # a one-block result: its labels in memory, to be corrected; its maps lazy, from the zarr result
    assert isinstance(nuclei.data, np.ndarray) and nuclei.editable
    assert not isinstance(viewer.layers["plate probability"].data, np.ndarray)
    assert " on ." not in widget._status.value and "CPU" in widget._status.value  # the device is named
    assert len(nuclei.features) > 50
    assert widget._progress.value == 100
    assert list(tmp_path.rglob("labels.zarr"))  # the result lies in the cache folder


def test_a_model_setting_for_the_image_kind_survives_the_widget_showing_the_shared_one(viewer, qtbot, small_field,
                                                                                      notifications):
    from napari_nucleiseg import zoo

    shipped = zoo.get_entry("unet16")
    model, blob = zoo.load_weights_file(shipped.weights)
    card = {k: v for k, v in shipped.card.items() if k not in ("name", "default")}
    card["postprocess_by_kind"] = {"fluorescence": {"min_size": 400}}
    entry = zoo.save_user_model("big-min", model, blob["architecture"], blob["config"], card)
    image, _ = small_field
    viewer.add_image(image, name="cells")
    widget = _dock(viewer)
    widget.refresh_models()
    widget._model.value = entry.name
    assert widget._min_size.value == entry.postprocess()["min_size"] != 400  # the widget shows the shared value
    _run_and_wait(qtbot, widget)
    assert not notifications["error"], notifications
    assert viewer.layers["cells nuclei"].metadata["nucleiseg"]["min_size"] == 400
    widget._min_size.value = entry.postprocess()["min_size"] + 1  # the user's own value applies to every kind
    _run_and_wait(qtbot, widget)
    assert viewer.layers["cells nuclei"].metadata["nucleiseg"]["min_size"] == entry.postprocess()["min_size"] + 1


def test_an_rgb_stack_is_segmented_plane_by_plane(viewer, qtbot, notifications):
    from skimage.data import immunohistochemistry

    rgb = immunohistochemistry()[:96, :96]
    viewer.add_image(np.stack([rgb, rgb]), name="he stack", rgb=True)
    widget = SegmentWidget(viewer)
    _run_and_wait(qtbot, widget)
    assert not notifications["error"], notifications
    assert viewer.layers["he stack nuclei"].data.shape == (2, 96, 96)


def test_closing_the_window_cancels_a_running_segmentation(viewer, qtbot, notifications, monkeypatch):
    import threading

    from napari_nucleiseg._napari import segment_widget

    started, release = threading.Event(), threading.Event()

    def slow(inp, cancel=None, **kwargs):
        started.set()
        while not cancel():
            release.wait(0.01)
        return segment_widget.SegmentOutcome(cancelled=True)

    monkeypatch.setattr(segment_widget, "segment_image", slow)
    viewer.add_image(np.zeros((64, 64), np.float32), name="cells")
    widget = SegmentWidget(viewer)
    widget.run()
    assert started.wait(10)
    manager = viewer.window._task_status_manager
    assert manager.is_busy() and any("segmenting 'cells'" in s for s in manager.get_status())
    manager.cancel_all()  # what closing the window does: the widget's Cancel ends the job
    qtbot.waitUntil(lambda: not widget.running, timeout=10000)
    assert not manager.is_busy() and widget._status.value.startswith("Cancel")


def test_running_again_keeps_the_labels_the_user_corrected(viewer, qtbot, notifications, small_field):
    image, _ = small_field
    viewer.add_image(image, name="cells")
    widget = SegmentWidget(viewer)
    _run_and_wait(qtbot, widget)
    labels = viewer.layers["cells nuclei"]
    labels.paint((10, 10), 777)  # a correction
    widget._min_size.value = widget._min_size.value + 1
    _run_and_wait(qtbot, widget)
    assert 777 in viewer.layers["cells nuclei (corrected)"].data
    assert 777 not in viewer.layers["cells nuclei"].data
    assert "kept in 'cells nuclei (corrected)'" in widget._status.value
    _run_and_wait(qtbot, widget)  # no new painting: the result is simply replaced
    assert [layer.name for layer in viewer.layers].count("cells nuclei (corrected)") == 1
    assert "cells nuclei (corrected 2)" not in viewer.layers


def test_current_slice_after_a_correction_keeps_the_other_planes(viewer, qtbot, notifications):
    viewer.add_image(np.stack(_planes(2)), name="zs")
    widget = SegmentWidget(viewer)
    _run_and_wait(qtbot, widget)
    labels = viewer.layers["zs nuclei"]
    labels.paint((0, 10, 10), 777)  # a correction on plane 0
    corrected = np.asarray(labels.data).copy()
    viewer.dims.set_current_step(0, 1)
    widget._stacks.value = CURRENT_SLICE
    _run_and_wait(qtbot, widget)
    assert np.array_equal(viewer.layers["zs nuclei (corrected)"].data, corrected)
    nuclei = viewer.layers["zs nuclei"]
    np.testing.assert_array_equal(nuclei.data[0], corrected[0])  # the plane not re-segmented stays
    assert nuclei.data[1].max() > 0 and set(nuclei.features["plane"]) == {0, 1}


def test_the_model_box_tooltip_describes_the_chosen_model(viewer):
    from napari_nucleiseg import zoo

    widget = SegmentWidget(viewer)
    other = next(name for name in widget._model.choices if name != widget._model.value)
    widget._model.value = other
    assert zoo.get_entry(other).description in widget._model.native.toolTip()
