"""Batch Segment Folder widget: a folder to completion, the result table, opening a row, cancel."""

import numpy as np
import pytest
import tifffile

from napari_nucleiseg._napari import batch_widget as bw
from napari_nucleiseg._napari.batch_widget import BatchWidget
from napari_nucleiseg.synthetic import synthetic_nuclei


@pytest.fixture
def folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(3):
        tifffile.imwrite(src / f"img{i}.tif", synthetic_nuclei((128, 128), n_nuclei=8, seed=i)[0])
    (src / "broken.tif").write_text("not an image")
    return src


@pytest.fixture
def shown(monkeypatch):
    msgs = {"error": [], "info": []}
    monkeypatch.setattr(bw, "show_error", lambda m: msgs["error"].append(m))
    monkeypatch.setattr(bw, "show_info", lambda m: msgs["info"].append(m))
    return msgs


def _dock(viewer):
    _, widget = viewer.window.add_plugin_dock_widget("napari-nucleiseg", "Batch Segment Folder")
    assert isinstance(widget, BatchWidget)
    return widget


def test_widget_runs_a_folder_and_opens_a_result(viewer, qtbot, folder, tmp_path, shown):
    widget = _dock(viewer)
    out = tmp_path / "out"
    widget.set_folders(folder, out)
    widget._overlay.value = True
    seen = []
    statuses = []
    widget._relay.progressed.connect(lambda ev: seen.append((ev.done, ev.total)))
    widget._relay.progressed.connect(lambda ev: statuses.append(widget._status.value))
    assert widget.run() is not None
    assert widget.running and not widget._run_btn.enabled and widget._cancel_btn.enabled
    qtbot.waitUntil(lambda: not widget.running, timeout=120000)

    res = widget.result
    assert res is not None and res.status == "completed"
    assert (res.n_ok, res.n_failed) == (3, 1)
    assert seen[-1] == (4, 4) and widget._progress.value == 4 and widget._progress.max == 4
    assert "2 of 4 images done" in statuses[1] and "left" in statuses[-2]
    assert statuses[-1].startswith("4 of 4 images done (") and "left" not in statuses[-1]  # nothing is left
    assert "3 of 4 images segmented" in widget._status.value and "1 failed" in widget._status.value
    assert "First failure: broken.tif: " in widget._status.value  # the table's Error column is out of sight
    assert widget._run_btn.enabled and not widget._cancel_btn.enabled
    for i in range(3):
        assert (out / f"img{i}_labels.tif").exists() and (out / f"img{i}_overlay.png").exists()
    data = widget._table.data.to_list()
    assert [r[0] for r in data] == ["broken.tif", "img0.tif", "img1.tif", "img2.tif"]
    assert data[0][1] == "error" and "not a TIFF" in data[0][5]

    # clicking a row opens the image and its labels, with the measurements as features
    widget._table.native.cellClicked.emit(2, 0)
    assert "img1.tif" in viewer.layers and "img1.tif nuclei" in viewer.layers
    labels = viewer.layers["img1.tif nuclei"]
    np.testing.assert_array_equal(labels.data, tifffile.imread(out / "img1_labels.tif"))
    assert len(labels.features) == res.summary.loc[2, "nuclei"]
    assert "confidence" in labels.features.columns
    # a failed row shows its error instead of opening anything
    n_layers = len(viewer.layers)
    assert widget.open_row(0) == [] and len(viewer.layers) == n_layers
    assert any("not a TIFF" in m for m in shown["info"])


def test_widget_refuses_the_input_folder_as_output(viewer, folder, shown):
    widget = _dock(viewer)
    widget.set_folders(folder, folder)
    assert widget.run() is None and not widget.running
    assert "input folder" in shown["error"][-1]


def test_widget_cancel_stops_and_a_second_run_resumes(viewer, qtbot, folder, tmp_path, shown):
    for i in range(3, 6):
        tifffile.imwrite(folder / f"img{i}.tif", synthetic_nuclei((128, 128), n_nuclei=8, seed=i)[0])
    widget = _dock(viewer)
    out = tmp_path / "out"
    widget.set_folders(folder, out)
    # "broken.tif" fails first, then img0 is segmented: press Cancel
    widget._relay.progressed.connect(lambda ev: widget._cancel_btn.native.click() if ev.done == 2 else None)
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=120000)
    assert widget.result.status == "cancelled" and widget.result.n_pending >= 1
    assert "cancelled" in widget._status.value

    widget._relay.progressed.disconnect()
    widget._relay.progressed.connect(widget._on_progress)
    widget.run()
    qtbot.waitUntil(lambda: not widget.running, timeout=120000)
    assert widget.result.status == "completed" and widget.result.n_skipped >= 1
    assert widget.result.n_ok == 6 and not widget._table.native.isHidden() and widget._table.shape == (7, 6)


def test_widget_options_carry_the_smoothing_choice(viewer, shown):
    widget = _dock(viewer)
    assert widget.options().denoise is True
    widget._denoise.value = False
    assert widget.options().denoise is False
    assert widget.options().even_light is True
    widget._even_light.value = False
    assert widget.options().even_light is False
    assert widget.options().channel is None
    widget._channel.value = 2
    assert widget.options().channel == 2


def test_a_row_opens_the_channel_that_was_segmented(viewer, tmp_path):
    from napari_nucleiseg.batch import BatchOptions, run_batch

    image, _ = synthetic_nuclei((96, 96), n_nuclei=5, seed=3)
    folder = tmp_path / "in"
    folder.mkdir()
    two = np.stack([np.zeros_like(image), image])  # (C, Y, X): nothing, then the nuclei
    tifffile.imwrite(folder / "well.tif", two, metadata={"axes": "CYX"})
    widget = _dock(viewer)
    widget._channel.value = 1
    widget._run_input, widget._run_channel = folder, widget.options().channel
    widget.result = run_batch(folder, tmp_path / "out", BatchOptions(model="unet16", channel=1))
    layers = widget.open_row(0)
    assert len(layers) == 2
    np.testing.assert_array_equal(viewer.layers["well.tif"].data, image)
    assert viewer.layers["well.tif nuclei"].data.max() > 0


def test_open_row_keeps_the_pixel_size_and_opens_out_of_core_results(viewer, qtbot, tmp_path, shown,
                                                                      monkeypatch):
    src = tmp_path / "in"
    src.mkdir()
    image = synthetic_nuclei((128, 128), n_nuclei=8, seed=1)[0]
    tifffile.imwrite(src / "a.tif", image, imagej=True, resolution=(2.0, 2.0), metadata={"unit": "um"})
    widget = _dock(viewer)
    widget.set_folders(src, tmp_path / "out")
    widget._device.value = "cpu"
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    layers = widget.open_row(0)
    assert len(layers) == 2 and all(tuple(layer.scale) == (0.5, 0.5) for layer in layers)
    # above the out-of-core threshold the result is a zarr folder: opened lazily, not an error
    monkeypatch.setenv("NUCLEISEG_OUT_OF_CORE_PIXELS", "10000")
    widget.set_folders(src, tmp_path / "out2")
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=60000)
    assert str(widget.result.summary.iloc[0]["labels"]).endswith(".zarr")
    layers = widget.open_row(0)
    assert not shown["error"] and "a.tif nuclei" in [layer.name for layer in layers]
    assert tuple(viewer.layers["a.tif nuclei"].scale) == (0.5, 0.5)


def test_a_model_fine_tuned_later_is_offered(viewer):
    import torch

    from napari_nucleiseg import zoo
    from napari_nucleiseg.models import build

    widget = _dock(viewer)
    torch.manual_seed(0)
    zoo.save_user_model("tiny-new", build("unet", base=8, depth=3), "unet", {"base": 8, "depth": 3},
                        {"description": "tiny"})
    _, finetune = viewer.window.add_plugin_dock_widget("napari-nucleiseg", "Fine-tune Model")
    finetune.refresh_models()  # what the Fine-tune widget does when it saves a model
    assert "tiny-new" in list(widget._model.choices)
