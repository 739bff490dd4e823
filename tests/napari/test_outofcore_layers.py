"""The out-of-core route of the Segment Nuclei work: a dask layer in, lazy multiscale layers out."""

import dask.array as da
import numpy as np
import zarr

from napari_nucleiseg._napari.outofcore_work import segment_large_image, wants_out_of_core
from napari_nucleiseg._napari.segment_work import ImageInput
from napari_nucleiseg.synthetic import synthetic_mosaic


def test_dask_layer_is_segmented_out_of_core_into_lazy_layers(viewer, tmp_path):
    import napari

    image, _ = synthetic_mosaic((600, 500))
    inp = ImageInput(da.from_array(image, chunks=256), "plate", scale=(0.5, 0.5))
    assert wants_out_of_core(inp) and not wants_out_of_core(ImageInput(image, "plate"))
    seen = []
    outcome = segment_large_image(inp, out=tmp_path / "res", model="unet16", diameter=15, block=256,
                                  progress=lambda f, m: seen.append(m))
    assert outcome.ok and outcome.n_nuclei > 50, outcome.error
    assert seen[-1] == "block 12/12"
    assert outcome.unsure == ""  # the mosaic's nuclei are clear
    for data, kwargs, kind in outcome.layers:
        layer = viewer.add_layer(napari.layers.Layer.create(data, kwargs, kind))
        assert layer.multiscale and isinstance(layer.data[0], zarr.Array)
        assert tuple(layer.scale) == (0.5, 0.5)
    nuclei = viewer.layers["plate nuclei"]
    assert [lv.shape for lv in nuclei.data] == [(600, 500), (300, 250), (150, 125)]
    assert len(nuclei.features) == outcome.n_nuclei
    assert np.asarray(nuclei.data[0]).max() == outcome.n_nuclei
    cancelled = segment_large_image(inp, out=tmp_path / "other", model="unet16", diameter=15, block=256,
                                    cancel=lambda: True)
    assert cancelled.cancelled and not cancelled.layers
    bad = segment_large_image(ImageInput(da.zeros((4, 600, 500), chunks=256), "stack"), out=tmp_path / "x")
    assert bad.error and "one 2D plane" in bad.error


def test_out_of_core_outcome_says_when_the_model_is_unsure(tmp_path, monkeypatch):
    from napari_nucleiseg.inference import measure

    monkeypatch.setattr(measure, "UNSURE_BELOW", 1.01)  # every image is then one it is unsure of
    image, _ = synthetic_mosaic((300, 300))
    outcome = segment_large_image(ImageInput(da.from_array(image, chunks=256), "plate"), out=tmp_path / "res",
                                  model="unet16", diameter=15, block=256)
    assert outcome.ok and "The model is unsure of this image" in outcome.unsure


def test_a_run_with_other_settings_never_touches_the_result_on_screen(tmp_path, monkeypatch):
    from napari_nucleiseg._napari import outofcore_work

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    image, _ = synthetic_mosaic((300, 300), tile=150)
    inp = ImageInput(da.from_array(image, chunks=150), "plate")
    common = dict(model="unet16", diameter=15, block=150)
    first = segment_large_image(inp, threshold=0.5, **common)
    shown = np.asarray(first.layers[0][0][0])  # the labels layer's full-resolution level
    assert first.ok and shown.max() > 0
    cancelled = segment_large_image(inp, threshold=0.3, cancel=lambda: True, **common)
    assert cancelled.cancelled
    np.testing.assert_array_equal(np.asarray(first.layers[0][0][0]), shown)  # still readable, unchanged
    for threshold in (0.3, 0.5, 0.4):  # 0.5 again comes from the cache: still the newest but one after 0.4
        assert segment_large_image(inp, threshold=threshold, **common).ok
    kept = list(outofcore_work.default_folder(inp).parent.iterdir())
    assert len(kept) == outofcore_work.KEPT_RESULTS
    np.testing.assert_array_equal(np.asarray(first.layers[0][0][0]), shown)


def test_a_one_block_result_can_be_corrected_and_a_multiscale_one_is_reviewed_read_only(viewer, tmp_path):
    import napari

    from napari_nucleiseg._napari.review_widget import ReviewWidget

    image, _ = synthetic_mosaic((200, 180))
    small = segment_large_image(ImageInput(da.from_array(image, chunks=128), "one"), out=tmp_path / "one",
                                model="unet16", diameter=15, block=256)
    assert small.ok and small.n_nuclei > 5, small.error
    for data, kwargs, kind in small.layers:
        viewer.add_layer(napari.layers.Layer.create(data, kwargs, kind))
    nuclei = viewer.layers["one nuclei"]
    assert isinstance(nuclei.data, np.ndarray) and nuclei.editable
    nuclei.mode, nuclei.brush_size = "erase", 9
    y, x = (int(round(v)) for v in nuclei.features[["centroid_y", "centroid_x"]].iloc[0])
    nuclei.paint((y, x), 0)  # no read-only store underneath
    assert nuclei.data[y, x] == 0 and (tmp_path / "one").exists()

    big = segment_large_image(ImageInput(da.from_array(image, chunks=128), "many"), out=tmp_path / "many",
                              model="unet16", diameter=15, block=128)
    for data, kwargs, kind in big.layers:
        viewer.add_layer(napari.layers.Layer.create(data, kwargs, kind))
    pyramid = viewer.layers["many nuclei"]
    assert pyramid.multiscale and not pyramid.editable
    review = ReviewWidget(viewer)
    review._layer.value = pyramid
    review.refresh()
    review._nuclei_list.value = [0]
    assert pyramid.mode == "pan_zoom" and "read-only" in review._info.value
