"""Result layers replacing earlier ones, the review list after edits, and user models renamed or
deleted while other docked widgets show or use them."""

import numpy as np
import pytest
import tifffile
import torch

from napari_nucleiseg import zoo
from napari_nucleiseg._napari.layer_output import put_layers
from napari_nucleiseg.models import build
from napari_nucleiseg.synthetic import synthetic_nuclei


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return zoo.save_user_model("tiny", build("unet", base=8, depth=3), "unet", {"base": 8, "depth": 3},
                               {"description": "tiny test model"})


def _dock(viewer, name):
    return viewer.window.add_plugin_dock_widget("napari-nucleiseg", name)[1]


def test_a_new_result_clears_the_old_undo_history_and_highlight(viewer):
    layer = viewer.add_labels(np.zeros((64, 64), np.int32), name="a nuclei")
    layer.mode, layer.brush_size = "paint", 5
    layer.paint((10, 10), 99)  # a correction of the old result
    layer.show_selected_label = True
    put_layers(viewer, [(np.full((64, 64), 7, np.int32), {"name": "a nuclei"}, "labels")])
    layer.undo()  # Ctrl-Z painted the old stroke's pixels into the new result
    assert (layer.data == 7).all() and not layer.show_selected_label


def test_plain_and_multiscale_results_replace_each_other(viewer):
    labels = np.zeros((64, 64), np.int32)
    viewer.add_labels(labels, name="a nuclei")
    [layer] = put_layers(viewer, [([labels, labels[::2, ::2]], {"name": "a nuclei", "multiscale": True}, "labels")])
    assert layer.multiscale and len(viewer.layers) == 1
    [layer] = put_layers(viewer, [(labels, {"name": "a nuclei"}, "labels")])
    assert not layer.multiscale and len(viewer.layers) == 1


def test_the_review_list_drops_erased_nuclei(viewer, small_field):
    import pandas as pd

    from napari_nucleiseg._napari.review_widget import ReviewWidget

    _, truth = small_field
    ids = np.unique(truth[truth > 0])
    features = pd.DataFrame({"label": ids, "confidence": np.linspace(0.1, 0.9, len(ids)),
                             "centroid_y": 10.0, "centroid_x": 10.0, "area": 50})
    layer = viewer.add_labels(truth.copy(), name="cells nuclei", features=features)
    widget = ReviewWidget(viewer)
    widget._layer.value = layer
    widget.refresh()
    first = int(widget.rows.iloc[0]["label"])
    layer.data = np.where(layer.data == first, 0, layer.data)  # the user erases it
    widget.refresh()
    assert first not in widget.rows["label"].tolist() and len(widget.rows) == len(ids) - 1


def test_a_rename_keeps_the_model_and_settings_chosen_in_other_widgets(viewer, tiny):
    segment, batch, finetune = (_dock(viewer, n) for n in ("Segment Nuclei", "Batch Segment Folder",
                                                           "Fine-tune Model"))
    segment._model.value = batch._model.value = finetune._base.value = "tiny"
    segment._threshold.value = 0.3  # the user's own value
    finetune._name.value = "my-plate-model"
    finetune.manager.rename("tiny", "tiny2")
    assert segment._model.value == batch._model.value == finetune._base.value == "tiny2"
    assert segment._threshold.value == 0.3 and finetune._name.value == "my-plate-model"


def test_a_model_a_running_batch_uses_is_not_renamed(viewer, qtbot, tiny, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i in range(4):
        tifffile.imwrite(src / f"img{i}.tif", synthetic_nuclei((128, 128), n_nuclei=8, seed=i)[0])
    batch, finetune = _dock(viewer, "Batch Segment Folder"), _dock(viewer, "Fine-tune Model")
    batch.set_folders(src, tmp_path / "out")
    batch._model.value, batch._device.value = "tiny", "cpu"
    assert batch.run() is not None
    with pytest.raises(ValueError, match="in use by a running job"):
        finetune.manager.rename("tiny", "tiny-renamed")
    qtbot.waitUntil(lambda: not batch.running, timeout=60000)
    assert batch.result.n_failed == 0
    finetune.manager.rename("tiny", "tiny-renamed")  # once the batch is done


def test_exporting_damaged_weights_is_one_line(tiny, tmp_path):
    tiny.weights.write_bytes(b"PK\x03\x04 not a model any more")
    with pytest.raises(ValueError, match="cannot be read") as err:
        zoo.export_model("tiny", tmp_path / "m.pt")
    assert "\n" not in str(err.value) and not (tmp_path / "m.pt").exists()


def test_a_docked_widgets_proxied_viewer_updates_results_in_place_without_private_access_warnings(viewer, recwarn,
                                                                                                   monkeypatch):
    from napari.utils._proxies import PublicOnlyProxy

    from napari_nucleiseg._napari.layer_output import keep_edited_labels, painted

    proxied = PublicOnlyProxy(viewer)  # what napari hands a docked widget
    labels = np.zeros((64, 64), np.int32)
    labels[10:20, 10:20] = 1
    put_layers(proxied, [(labels, {"name": "a nuclei"}, "labels")])
    layer = viewer.layers["a nuclei"]
    layer.opacity = 0.3  # the user's display setting
    [again] = put_layers(proxied, [(labels * 2, {"name": "a nuclei"}, "labels")])
    assert viewer.layers["a nuclei"] is layer and layer.opacity == 0.3 and layer.data.max() == 2
    assert again is layer

    assert not painted(proxied.layers["a nuclei"])
    layer.mode, layer.brush_size = "paint", 5
    layer.paint((40, 40), 9)
    assert painted(proxied.layers["a nuclei"])
    layer.undo()  # every stroke undone: the labels are the result again
    assert not painted(proxied.layers["a nuclei"])
    layer.paint((40, 40), 9)
    monkeypatch.delattr(layer, "_undo_history")  # a napari without a history we can read: the paint event tells
    assert painted(proxied.layers["a nuclei"])
    monkeypatch.undo()
    assert keep_edited_labels(proxied, [(labels, {"name": "a nuclei"}, "labels")]) == ["a nuclei (corrected)"]
    assert not [w for w in recwarn.list if "Private attribute access" in str(w.message)]


def test_labels_given_other_data_count_as_changed(viewer):
    from napari_nucleiseg._napari.layer_output import painted, untouched_result

    labels = np.zeros((32, 32), np.int32)
    [layer] = put_layers(viewer, [(labels, {"name": "b nuclei"}, "labels")])
    assert untouched_result(layer) and not painted(layer)
    layer.data = np.ones((32, 32), np.int32)  # a script's own labels
    assert painted(layer) and not untouched_result(layer)
    put_layers(viewer, [(labels, {"name": "b nuclei"}, "labels")])  # a new result: unchanged again
    assert untouched_result(layer)


def test_a_job_is_listed_in_napari_task_status_through_a_proxied_viewer_without_warnings(viewer, recwarn):
    from napari.utils._proxies import PublicOnlyProxy

    from napari_nucleiseg._napari._common import _running_task

    stopped = []
    done = _running_task(PublicOnlyProxy(viewer), lambda: stopped.append(True), "segmenting")
    assert done is not None
    done()
    assert not [w for w in recwarn.list if "Private attribute access" in str(w.message)]
