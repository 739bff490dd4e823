"""A TIFF's pixel size reaches the results of ``nucleiseg segment`` and ``nucleiseg batch``: the
physical area column and the output TIFFs' metadata."""

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_nucleiseg.cli import main
from napari_nucleiseg.io.pixel_size import ome_options, pixel_size
from napari_nucleiseg.synthetic import synthetic_nuclei


@pytest.fixture
def inputs(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    image = synthetic_nuclei((128, 128), n_nuclei=8, seed=3)[0]
    tifffile.imwrite(folder / "ome.tif", image, ome=True, metadata={"axes": "YX", "PhysicalSizeX": 0.5,
                                                          "PhysicalSizeY": 0.25})
    tifffile.imwrite(folder / "ij.tif", image, imagej=True, resolution=(1 / 0.5, 1 / 0.25),
                     metadata={"unit": "um"})
    tifffile.imwrite(folder / "plain.tif", image)
    return folder


def _check(out):
    for stem in ("ome", "ij"):
        table = pd.read_csv(out / f"{stem}_nuclei.csv")
        assert len(table) > 0
        np.testing.assert_allclose(table["area_physical"], table["area"] * 0.125)
        for suffix in ("labels", "probability", "uncertainty"):
            assert pixel_size(out / f"{stem}_{suffix}.tif") == pytest.approx((0.25, 0.5))
    assert "area_physical" not in pd.read_csv(out / "plain_nuclei.csv").columns
    assert pixel_size(out / "plain_labels.tif") is None


def test_segment_carries_pixel_size(inputs, tmp_path):
    out = tmp_path / "out"
    assert main(["segment", *(str(p) for p in sorted(inputs.iterdir())), "--out", str(out)]) == 0
    _check(out)


def test_batch_carries_pixel_size(inputs, tmp_path):
    out = tmp_path / "out"
    assert main(["batch", str(inputs), str(out), "-q"]) == 0
    _check(out)


def test_stack_keeps_z_spacing(tmp_path):
    stack = np.zeros((3, 16, 16), np.uint16)
    tifffile.imwrite(tmp_path / "s.tif", stack, compression="zlib", **ome_options((2.0, 0.25, 0.5), 3))
    assert pixel_size(tmp_path / "s.tif") == pytest.approx((2.0, 0.25, 0.5))
    assert tifffile.imread(tmp_path / "s.tif").shape == (3, 16, 16)
    assert ome_options((0.25, 0.5), 4) == {} and ome_options(None, 2) == {}


def test_empty_table_has_the_same_columns():
    from napari_nucleiseg.inference.measure import measure

    empty = measure(np.zeros((8, 8), np.int32), np.zeros((8, 8)), np.zeros((8, 8)), np.zeros((8, 8)),
                    scale=(0.25, 0.5))
    one = np.zeros((8, 8), np.int32)
    one[2:5, 2:5] = 1
    full = measure(one, np.ones((8, 8)), np.ones((8, 8)), np.zeros((8, 8)), scale=(0.25, 0.5))
    assert list(empty.columns) == list(full.columns) and len(empty) == 0
    assert dict(empty.dtypes)["label"] == dict(full.dtypes)["label"] == np.int64


@pytest.mark.parametrize("value, unit, expected", [
    (100.0, "nm", (0.1, 0.1)), (0.0005, "mm", (0.5, 0.5)), (0.5, None, (0.5, 0.5)), (2.0, "parsec", None),
    (float("nan"), None, None), (float("inf"), None, None), (1e-300, None, None), (-1.0, None, None),
])
def test_ome_pixel_sizes_are_micrometres_and_odd_ones_are_ignored(tmp_path, value, unit, expected):
    meta = {"axes": "YX", "PhysicalSizeX": value, "PhysicalSizeY": value}
    if unit:
        meta.update(PhysicalSizeXUnit=unit, PhysicalSizeYUnit=unit)
    tifffile.imwrite(tmp_path / "a.ome.tif", np.zeros((16, 16), np.uint8), ome=True, metadata=meta)
    assert pixel_size(tmp_path / "a.ome.tif") == (pytest.approx(expected) if expected else None)


def test_imagej_units_are_converted_to_micrometres(tmp_path):
    image = np.zeros((16, 16), np.uint8)
    for unit, expected in (("nm", (0.25, 0.5)), ("\\u00B5m", (250.0, 500.0)), ("micron", (250.0, 500.0)),
                           ("pixel", None)):
        tifffile.imwrite(tmp_path / "ij.tif", image, imagej=True, resolution=(1 / 500, 1 / 250),
                         metadata={"unit": unit})
        assert pixel_size(tmp_path / "ij.tif") == (pytest.approx(expected) if expected else None), unit


def test_imagej_resolution_unit_is_honoured_without_a_unit(tmp_path):
    image = np.zeros((16, 16), np.uint8)  # 2.5 µm pixels as ImageJ reads them: per cm, per inch
    for resolution, unit in ((4000, "CENTIMETER"), (10160, "INCH")):
        tifffile.imwrite(tmp_path / "ij.tif", image, imagej=True, resolution=(resolution, resolution),
                         resolutionunit=unit)
        assert pixel_size(tmp_path / "ij.tif") == pytest.approx((2.5, 2.5)), unit


def test_a_time_lapse_gets_no_z_spacing(tmp_path):
    movie = np.zeros((3, 16, 16), np.uint8)
    tifffile.imwrite(tmp_path / "t.ome.tif", movie, ome=True,
                     metadata={"axes": "TYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5, "PhysicalSizeZ": 2.0})
    tifffile.imwrite(tmp_path / "t.tif", movie, imagej=True, resolution=(2, 2),
                     metadata={"axes": "TYX", "spacing": 2.0, "unit": "um"})
    tifffile.imwrite(tmp_path / "z.tif", movie, imagej=True, resolution=(2, 2),
                     metadata={"axes": "ZYX", "spacing": 2.0, "unit": "um"})
    assert pixel_size(tmp_path / "t.ome.tif") == pytest.approx((0.5, 0.5))
    assert pixel_size(tmp_path / "t.tif") == pytest.approx((0.5, 0.5))
    assert pixel_size(tmp_path / "z.tif") == pytest.approx((2.0, 0.5, 0.5))
    with tifffile.TiffWriter(tmp_path / "i.tif") as tif:  # images= without slices=: tifffile's axis I
        for i in range(4):
            tif.write(movie[0], resolution=(2.0, 2.0), contiguous=True, metadata=None,
                      description="ImageJ=1.54f\nimages=4\nunit=micron\nspacing=3.0\n" if i == 0 else None)
    assert pixel_size(tmp_path / "i.tif") == pytest.approx((3.0, 0.5, 0.5))  # ImageJ opens it as a Z stack


def test_a_nan_pixel_size_does_not_stop_segment(tmp_path):
    image = synthetic_nuclei((96, 96), n_nuclei=5, seed=3)[0]
    tifffile.imwrite(tmp_path / "a.ome.tif", image, ome=True,
                     metadata={"axes": "YX", "PhysicalSizeX": float("nan"), "PhysicalSizeY": float("nan")})
    tifffile.imwrite(tmp_path / "b.tif", image)
    assert main(["segment", str(tmp_path / "a.ome.tif"), str(tmp_path / "b.tif"), "--out", str(tmp_path / "o")]) == 0
    assert (tmp_path / "o" / "a_labels.tif").exists() and (tmp_path / "o" / "b_labels.tif").exists()
