"""Reader: TIFF (2D, stack, OME with pixel size), PNG, JPEG, DSB folders; unreadable files get no reader."""

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_nucleiseg._napari.reader import get_reader


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 4000, (40, 50), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "plain.tif", img)
    tifffile.imwrite(tmp_path / "stack.tiff", np.stack([img, img, img]), photometric="minisblack")
    tifffile.imwrite(tmp_path / "calibrated.ome.tif", img, ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": 0.25, "PhysicalSizeY": 0.5})
    iio.imwrite(tmp_path / "rgb.png", rng.integers(0, 255, (30, 20, 3), dtype=np.uint8))
    iio.imwrite(tmp_path / "grey.jpg", rng.integers(0, 255, (30, 20), dtype=np.uint8))
    (tmp_path / "corrupt.tif").write_bytes(b"II*\x00 this is not a tiff")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("hello")
    dsb = tmp_path / "abc123"
    (dsb / "images").mkdir(parents=True)
    (dsb / "masks").mkdir()
    iio.imwrite(dsb / "images" / "abc123.png", rng.integers(0, 255, (32, 32, 4), dtype=np.uint8))
    for i, (y, x) in enumerate([(5, 5), (20, 20)]):
        m = np.zeros((32, 32), np.uint8)
        m[y:y + 6, x:x + 6] = 255
        iio.imwrite(dsb / "masks" / f"m{i}.png", m)
    (tmp_path / "plain_folder").mkdir()
    tifffile.imwrite(tmp_path / "two.tif", np.stack([img, img // 2], -1), photometric="minisblack",
                     planarconfig="contig")
    return tmp_path


def test_get_reader_returns_none_for_what_it_cannot_read(files):
    for name in ("corrupt.tif", "empty.png", "notes.txt", "missing.tif", "plain_folder"):
        assert get_reader(str(files / name)) is None, name
    assert get_reader([str(files / "plain.tif"), str(files / "corrupt.tif")]) is None


def test_reader_layer_data(files):
    (data, kw, kind), = get_reader(str(files / "plain.tif"))(str(files / "plain.tif"))
    assert kind == "image" and data.shape == (40, 50) and kw["name"] == "plain" and not kw["rgb"]
    (data, kw, _), = get_reader(str(files / "calibrated.ome.tif"))(str(files / "calibrated.ome.tif"))
    assert kw["scale"] == (0.5, 0.25)
    (data, kw, _), = get_reader(str(files / "rgb.png"))(str(files / "rgb.png"))
    assert data.shape == (30, 20, 3) and kw["rgb"]
    layers = get_reader(str(files / "abc123"))(str(files / "abc123"))
    assert [(kw["name"], kind) for _, kw, kind in layers] == [("abc123", "image"),
                                                              ("abc123 ground truth", "labels")]
    assert layers[1][0].max() == 2
    (data, kw, _), = get_reader(str(files / "two.tif"))(str(files / "two.tif"))
    assert data.shape == (40, 50, 2) and kw["channel_axis"] == -1
    assert kw["name"] == ["two [channel 0]", "two [channel 1]"]


def test_five_channels_are_five_layers(tmp_path):
    tifffile.imwrite(tmp_path / "paint.tif", np.arange(5 * 40 * 50, dtype=np.uint16).reshape(5, 40, 50),
                     metadata={"axes": "CYX"})
    (data, kw, _), = get_reader(str(tmp_path / "paint.tif"))(str(tmp_path / "paint.tif"))
    assert data.shape == (40, 50, 5) and kw["channel_axis"] == -1 and "rgb" not in kw
    assert kw["name"][3] == "paint [channel 3]" and len(kw["name"]) == 5
    np.testing.assert_array_equal(data[..., 3], np.arange(5 * 40 * 50).reshape(5, 40, 50)[3])
    tifffile.imwrite(tmp_path / "zstack.tif", np.zeros((3, 6, 40, 50), np.uint8), metadata={"axes": "ZCYX"})
    (data, kw, _), = get_reader(str(tmp_path / "zstack.tif"))(str(tmp_path / "zstack.tif"))
    assert data.shape == (3, 40, 50, 6) and len(kw["name"]) == 6


def test_viewer_open_each_format(make_napari_viewer, files):
    viewer = make_napari_viewer()
    viewer.open(str(files / "plain.tif"), plugin="napari-nucleiseg")
    viewer.open(str(files / "stack.tiff"), plugin="napari-nucleiseg")
    viewer.open(str(files / "calibrated.ome.tif"), plugin="napari-nucleiseg")
    viewer.open(str(files / "rgb.png"))  # PNG and JPEG: napari's own reader
    viewer.open(str(files / "two.tif"), plugin="napari-nucleiseg")
    viewer.open(str(files / "grey.jpg"))
    viewer.open(str(files / "abc123"), plugin="napari-nucleiseg")
    layers = viewer.layers
    assert [la.name for la in layers] == ["plain", "stack", "calibrated.ome", "rgb", "two [channel 0]",
                                          "two [channel 1]", "grey", "abc123", "abc123 ground truth"]
    assert layers["two [channel 1]"].data.shape == (40, 50)
    assert layers["stack"].data.shape == (3, 40, 50)
    np.testing.assert_allclose(layers["calibrated.ome"].scale, (0.5, 0.25))
    assert layers["rgb"].data.shape[:2] == (30, 20) and layers["grey"].data.shape == (30, 20)
    assert type(layers["abc123 ground truth"]).__name__ == "Labels"


def test_reader_is_offered_only_for_tiff_and_folders(tmp_path):
    """napari asks "Choose reader" only where this reader adds something: never for PNG, JPEG or CSV."""
    import npe2

    pm = npe2.PluginManager.instance()
    pm.discover()

    def ours(path):
        return "napari-nucleiseg" in {r.plugin_name for r in pm.iter_compatible_readers([str(path)])}

    assert ours(tmp_path / "a.tif") and ours(tmp_path / "b.ome.tiff") and ours(tmp_path)
    assert not any(ours(tmp_path / name) for name in ("a.png", "b.jpg", "c.jpeg", "table.csv", "notes.txt"))


def test_writer_saves_labels_with_their_table(make_napari_viewer, tmp_path):
    import pandas as pd
    import tifffile

    viewer = make_napari_viewer()
    labels = np.zeros((40, 50), np.int32)
    labels[5:15, 5:15], labels[20:30, 30:45] = 1, 2
    features = pd.DataFrame({"index": [1, 2], "label": [1, 2], "area": [100, 150]})
    layer = viewer.add_labels(labels, name="cells nuclei", features=features)
    written = layer.save(str(tmp_path / "cells_labels.tif"), plugin="napari-nucleiseg")
    assert [p.rsplit("/", 1)[-1] for p in written] == ["cells_labels.tif", "cells_labels.csv"]
    back = tifffile.imread(tmp_path / "cells_labels.tif")
    assert back.dtype == np.uint16
    np.testing.assert_array_equal(back, labels)
    table = pd.read_csv(tmp_path / "cells_labels.csv")
    assert list(table.columns) == ["label", "area"] and list(table["area"]) == [100, 150]


def test_writer_keeps_the_layer_scale_and_reader_reads_it_back(tmp_path):
    from napari_nucleiseg._napari.writer import write_labels

    labels = np.zeros((40, 50), np.int32)
    labels[5:15, 5:15] = 1
    write_labels(str(tmp_path / "lab.tif"), labels, {"scale": (0.5, 0.25), "features": None})
    (data, kwargs, _), = get_reader(str(tmp_path / "lab.tif"))(str(tmp_path / "lab.tif"))
    assert kwargs["scale"] == (0.5, 0.25)
    np.testing.assert_array_equal(data, labels)


def test_writer_leaves_no_stale_table_and_writes_labels_and_table_together(tmp_path):
    import pandas as pd

    from napari_nucleiseg._napari.writer import write_labels
    from napari_nucleiseg.errors import OutputWriteError
    from napari_nucleiseg.io.pixel_size import pixel_size

    labels = np.zeros((40, 50), np.int64)
    labels[5:15, 5:15] = 1
    table = pd.DataFrame({"label": [1], "area": [100]})
    write_labels(str(tmp_path / "x.tif"), labels, {"features": table})
    write_labels(str(tmp_path / "x.tif"), labels, {"features": None})  # another layer, no table
    assert (tmp_path / "x.csv").exists()  # not a table of ours: the user's own is kept
    from napari_nucleiseg.inference.measure import COLUMNS

    pd.DataFrame({c: [1] for c in COLUMNS}).to_csv(tmp_path / "x.csv", index=False)  # an earlier layer's
    write_labels(str(tmp_path / "x.tif"), labels, {"features": None})
    assert not (tmp_path / "x.csv").exists()
    (tmp_path / "y.csv").mkdir()  # the table cannot be written: the labels are not either
    with pytest.raises(OutputWriteError):
        write_labels(str(tmp_path / "y.tif"), labels, {"features": table})
    assert not (tmp_path / "y.tif").exists()
    for scale, size in (((-0.5, 0.25), (0.5, 0.25)), ((float("nan"), 0.5), None), ((0.0, 0.5), None)):
        write_labels(str(tmp_path / "z.tif"), labels, {"scale": scale})
        assert pixel_size(tmp_path / "z.tif") == (pytest.approx(size) if size else None)
    labels[20:30, 20:30] = 2**32 + 1  # a painted id beyond uint32 keeps its value
    write_labels(str(tmp_path / "big.tif"), labels, {})
    assert set(np.unique(tifffile.imread(tmp_path / "big.tif"))) == {0, 1, 2**32 + 1}


def test_a_two_channel_z_stack_opens_as_two_stacks_with_their_scale(tmp_path):
    stack = np.random.default_rng(0).integers(0, 255, (3, 2, 32, 40), dtype=np.uint8)  # Z, C, Y, X
    tifffile.imwrite(tmp_path / "zc.tif", stack, imagej=True, metadata={"axes": "ZCYX"}, resolution=(2.0, 2.0))
    (data, kwargs, _), = get_reader(str(tmp_path / "zc.tif"))(str(tmp_path / "zc.tif"))
    assert data.shape == (3, 32, 40, 2) and kwargs["channel_axis"] == -1 and len(kwargs["name"]) == 2
    assert kwargs["scale"] == pytest.approx((1.0, 0.5, 0.5))
    np.testing.assert_array_equal(data[..., 1], stack[:, 1])


def test_a_grey_and_alpha_tiff_reads_as_grey(tmp_path):
    from napari_nucleiseg.io.images import read_image

    grey = np.random.default_rng(0).integers(0, 255, (32, 40), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "ga.tif", np.stack([grey, np.full_like(grey, 255)], -1), photometric="minisblack",
                     extrasamples=["unassalpha"])
    np.testing.assert_array_equal(read_image(tmp_path / "ga.tif", for_segmentation=True), grey)


def test_float64_rgb_tiff_opens_as_colour(tmp_path):
    rgb = np.random.default_rng(0).random((32, 40, 3))
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    (data, kwargs, _), = get_reader(str(tmp_path / "rgb.tif"))(str(tmp_path / "rgb.tif"))
    assert kwargs["rgb"] and data.shape == (32, 40, 3)


def test_saved_labels_open_as_labels_with_their_table(make_napari_viewer, tmp_path):
    import pandas as pd

    from napari_nucleiseg.cli import main
    from napari_nucleiseg.synthetic import synthetic_nuclei

    tifffile.imwrite(tmp_path / "cells.tif", synthetic_nuclei((96, 96), n_nuclei=5, seed=0)[0])
    assert main(["segment", str(tmp_path / "cells.tif")]) == 0  # cells_labels.tif + cells_nuclei.csv
    (data, kwargs, kind), = get_reader(str(tmp_path / "cells_labels.tif"))(str(tmp_path / "cells_labels.tif"))
    assert kind == "labels" and len(kwargs["features"]) == data.max() > 0
    # napari finds label v's row by the index column: without it, label 1 showed label 2's row
    assert list(kwargs["features"]["index"]) == list(kwargs["features"]["label"])
    viewer = make_napari_viewer()
    layer = viewer.add_labels(data, features=kwargs["features"], name="cells nuclei")
    layer.save(str(tmp_path / "again.tif"), plugin="napari-nucleiseg")
    (_, kwargs, kind), = get_reader(str(tmp_path / "again.tif"))(str(tmp_path / "again.tif"))
    assert kind == "labels" and list(kwargs["features"]["label"]) == list(pd.read_csv(tmp_path / "again.csv")["label"])
    (_, _, kind), = get_reader(str(tmp_path / "cells.tif"))(str(tmp_path / "cells.tif"))
    assert kind == "image"
    pd.DataFrame({"label": [1, 2], "area": [3, 4]}).to_csv(tmp_path / "cells.csv", index=False)
    (_, _, kind), = get_reader(str(tmp_path / "cells.tif"))(str(tmp_path / "cells.tif"))
    assert kind == "image"  # a table of the same name whose labels are not the image's values



def test_a_segmented_stack_opens_with_its_table_and_saving_it_over_itself_keeps_it(make_napari_viewer, tmp_path):
    from napari_nucleiseg.cli import main
    from napari_nucleiseg.synthetic import synthetic_nuclei

    stack = np.stack([synthetic_nuclei((96, 96), n_nuclei=4, seed=s)[0] for s in (0, 1)])
    tifffile.imwrite(tmp_path / "cells.tif", stack)
    assert main(["segment", str(tmp_path / "cells.tif")]) == 0
    path = str(tmp_path / "cells_labels.tif")
    (data, kwargs, kind), = get_reader(path)(path)
    assert kind == "labels" and data.ndim == 3 and set(kwargs["features"]["plane"]) == {0, 1}
    layer = make_napari_viewer().add_labels(data, **kwargs)
    layer.save(path, plugin="napari-nucleiseg")  # over itself: its table stays beside it
    (_, again, _), = get_reader(path)(path)
    assert len(again["features"]) == len(kwargs["features"]) == len(np.unique(data)) - 1
def test_labels_saved_without_a_table_open_as_labels_again(tmp_path):
    from napari_nucleiseg._napari.writer import write_labels

    labels = np.zeros((2, 40, 50), np.int32)
    labels[0, 5:15, 5:15], labels[1, 20:30, 30:45] = 1, 2
    for data in (labels[0], labels):  # a painted 2D layer, a stack
        write_labels(str(tmp_path / "painted.tif"), data, {"features": None})
        (back, _, kind), = get_reader(str(tmp_path / "painted.tif"))(str(tmp_path / "painted.tif"))
        assert kind == "labels"
        np.testing.assert_array_equal(back, data)
    tifffile.imwrite(tmp_path / "counts.tif", labels[0])  # another program's integer image stays an image
    (_, _, kind), = get_reader(str(tmp_path / "counts.tif"))(str(tmp_path / "counts.tif"))
    assert kind == "image"


def test_a_list_of_files_opens_as_one_stack_and_complex_files_are_left_to_napari(tmp_path):
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"plane{i}.tif"))
        tifffile.imwrite(paths[-1], np.full((32, 32), i, np.uint8), imagej=True, resolution=(2, 2),
                         metadata={"unit": "um"})
    (data, kwargs, kind), = get_reader(paths)(paths)  # File > Open Files as Stack
    assert kind == "image" and data.shape == (3, 32, 32) and list(data[:, 0, 0]) == [0, 1, 2]
    assert kwargs["scale"] == pytest.approx((1.0, 0.5, 0.5))
    tifffile.imwrite(tmp_path / "other.tif", np.zeros((16, 16), np.uint8))
    assert get_reader([paths[0], str(tmp_path / "other.tif")]) is None  # shapes differ: napari's reader
    tifffile.imwrite(tmp_path / "c.tif", np.zeros((16, 16), np.complex64))
    assert get_reader(str(tmp_path / "c.tif")) is None


def test_labels_edited_in_napari_are_saved_with_a_table_that_matches_them(make_napari_viewer, tmp_path):
    import pandas as pd

    from napari_nucleiseg.inference.measure import measure
    from napari_nucleiseg.synthetic import synthetic_nuclei

    image, labels = synthetic_nuclei((96, 96), n_nuclei=6, touching=0.0, seed=4)
    ones = np.ones(labels.shape, np.float32)
    table = measure(labels, image, ones, ones * 0.2, scale=(0.5, 0.5))
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, features=table, name="cells nuclei", scale=(0.5, 0.5))
    first = int(table["label"].min())
    layer.fill(tuple(np.argwhere(labels == first)[0]), 0)  # erase a nucleus
    layer.paint((2, 2), 99)  # paint a new one (world coordinates)
    layer.save(str(tmp_path / "edited.tif"), plugin="napari-nucleiseg")
    saved = pd.read_csv(tmp_path / "edited.csv")
    assert set(saved["label"]) == set(np.unique(layer.data)) - {0}
    assert saved.set_index("label").loc[99, "edited"]
    (_, kwargs, kind), = get_reader(str(tmp_path / "edited.tif"))(str(tmp_path / "edited.tif"))
    assert kind == "labels" and len(kwargs["features"]) == len(saved)  # read back, not dropped


def test_three_and_four_fluorescence_channels_are_layers_and_rgb_stays_colour(tmp_path):
    data4 = np.arange(4 * 40 * 50, dtype=np.uint16).reshape(4, 40, 50)
    tifffile.imwrite(tmp_path / "four.ome.tif", data4, photometric="minisblack", metadata={"axes": "CYX"})
    (data, kw, _), = get_reader(str(tmp_path / "four.ome.tif"))(str(tmp_path / "four.ome.tif"))
    assert data.shape == (40, 50, 4) and kw["channel_axis"] == -1 and "rgb" not in kw and len(kw["name"]) == 4
    tifffile.imwrite(tmp_path / "three.tif", data4[:3], photometric="minisblack", metadata={"axes": "CYX"})
    (data, kw, _), = get_reader(str(tmp_path / "three.tif"))(str(tmp_path / "three.tif"))
    assert data.shape == (40, 50, 3) and kw["channel_axis"] == -1 and "rgb" not in kw
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((40, 50, 3), np.uint8), photometric="rgb")
    (data, kw, _), = get_reader(str(tmp_path / "rgb.tif"))(str(tmp_path / "rgb.tif"))
    assert data.shape == (40, 50, 3) and kw["rgb"] and "channel_axis" not in kw


def test_label_images_of_other_tools_open_as_labels_by_their_names(tmp_path):
    labels = np.zeros((40, 50), np.uint16)
    labels[5:15, 5:15] = 3
    (tmp_path / "labels").mkdir()
    for rel in ("cells_masks.tif", "cells_gt.tif", "labels/cells.tif"):
        tifffile.imwrite(tmp_path / rel, labels)
        (data, _, kind), = get_reader(str(tmp_path / rel))(str(tmp_path / rel))
        assert kind == "labels" and data.max() == 3, rel
    tifffile.imwrite(tmp_path / "cells.tif", labels)  # an image's name: an image
    tifffile.imwrite(tmp_path / "float_mask.tif", labels.astype(np.float32))  # not whole numbers: an image
    for rel in ("cells.tif", "float_mask.tif"):
        (_, _, kind), = get_reader(str(tmp_path / rel))(str(tmp_path / rel))
        assert kind == "image", rel


def test_labels_with_64_bit_ids_and_a_pixel_size_are_refused_in_one_line(tmp_path):
    from napari_nucleiseg._napari.writer import write_labels

    labels = np.zeros((20, 20), np.int64)
    labels[2:5, 2:5] = 2**33
    with pytest.raises(ValueError, match="label ids above 4294967295; renumber"):
        write_labels(str(tmp_path / "big.tif"), labels, {"scale": (0.5, 0.5), "features": None})
    assert not list(tmp_path.iterdir())
    write_labels(str(tmp_path / "big.tif"), labels, {"scale": (1.0, 1.0), "features": None})  # no size: 64-bit ids
    assert tifffile.imread(tmp_path / "big.tif").max() == 2**33
