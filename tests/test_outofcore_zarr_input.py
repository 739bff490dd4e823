"""Zarr / OME-Zarr (and TIFF) inputs of out-of-core segmentation: the OME-Zarr pixel size reaches the
result as a TIFF's does, malformed OME-Zarr metadata and chunks too large to decode are one line."""

import numpy as np
import pandas as pd
import pytest
import tifffile
import zarr

from napari_nucleiseg.errors import ImageReadError
from napari_nucleiseg.outofcore import ngff, open_source, source
from napari_nucleiseg.synthetic import synthetic_mosaic


def _ome_zarr(path, levels, multiscale: dict | None = None, unit="micrometer"):
    """An OME-Zarr 0.4 image of ``levels`` ``(array, scale)``; ``multiscale`` replaces its metadata."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    for i, (array, _) in enumerate(levels):
        group.create_array(str(i), data=array, chunks=(64, 64))
    axes = [{"name": a, "type": "space", **({"unit": unit} if unit else {})} for a in "yx"]
    group.attrs["multiscales"] = multiscale if multiscale is not None else [{
        "version": "0.4", "axes": axes,
        "datasets": [{"path": str(i), "coordinateTransformations": [{"type": "scale", "scale": scale}]}
                     for i, (_, scale) in enumerate(levels)]}]
    return path


def test_an_ome_zarr_pixel_size_reaches_the_result_as_a_tiff_one(tmp_path):
    from napari_nucleiseg.options import SegmentOptions
    from napari_nucleiseg.outofcore.auto import segment_file

    image = synthetic_mosaic((200, 200), tile=100)[0]
    path = _ome_zarr(tmp_path / "img.ome.zarr", [(image, [0.5, 0.5])])
    result, _ = segment_file(path, tmp_path / "img", SegmentOptions(device="cpu"), block=128)
    table = pd.read_csv(result.table_path)
    assert len(table) and np.allclose(table["area_physical"], table["area"] * 0.25)
    ms = zarr.open_group(str(result.labels_path), mode="r").attrs["multiscales"][0]
    assert ms["datasets"][0]["coordinateTransformations"][0]["scale"] == [0.5, 0.5]


@pytest.mark.parametrize("unit, level, expected", [
    ("micrometer", 0, (0.5, 0.25)),
    ("nanometer", 0, (5e-4, 2.5e-4)),  # converted to micrometres
    (None, 0, None),  # no unit: the scale OME-NGFF asks of every writer, not a calibration
    ("micrometer", 1, (1.0, 0.5)),  # the chosen level's own scale
    ("parsec", 0, None),  # a unit not known: no size
    ("micrometer", 2, None),  # no such level: open_source says so
])
def test_the_pixel_size_of_an_ome_zarr_level(tmp_path, unit, level, expected):
    image = np.zeros((64, 64), np.uint8)
    path = _ome_zarr(tmp_path / "img.zarr", [(image, [0.5, 0.25]), (image[::2, ::2], [1.0, 0.5])], unit=unit)
    assert ngff.zarr_pixel_size(path, level) == (pytest.approx(expected) if expected else None)


def test_a_multiscale_scale_applies_after_the_dataset_one_and_plain_arrays_have_none(tmp_path):
    path = _ome_zarr(tmp_path / "img.zarr", [(np.zeros((64, 64), np.uint8), [2.0, 2.0])])
    group = zarr.open_group(str(path), mode="r+")
    group.attrs["multiscales"] = [{**group.attrs["multiscales"][0],
                                   "coordinateTransformations": [{"type": "scale", "scale": [0.25, 0.5]}]}]
    assert ngff.zarr_pixel_size(path) == pytest.approx((0.5, 1.0))
    zarr.create_array(str(tmp_path / "plain.zarr"), data=np.zeros((64, 64), np.uint8))
    assert ngff.zarr_pixel_size(tmp_path / "plain.zarr") is None


BAD_METADATA = {
    "string": ("not a list", r"'multiscales' must be a list of objects, not 'not a list'"),
    "list_of_strings": (["abc"], r"'multiscales' must be a list of objects"),
    "datasets_not_a_list": ([{"datasets": "0"}], r"'datasets' must be a list of objects"),
    "no_path": ([{"datasets": [{}]}], r"dataset 0 has no 'path'"),
    "path_a_list": ([{"datasets": [{"path": ["0"]}]}], r"dataset 0 has 'path' \['0'\], not the name of an array"),
    "empty_axis_name": ([{"datasets": [{"path": "0"}], "axes": [{"name": ""}, {"name": "x"}]}],
                        r"'axes' must be a list of named axes"),
    "axes_not_a_list": ([{"datasets": [{"path": "0"}], "axes": "yx"}], r"'axes' must be a list of named axes"),
}


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_malformed_ome_zarr_metadata_is_one_line_naming_the_file(tmp_path, case):
    metadata, message = BAD_METADATA[case]
    path = _ome_zarr(tmp_path / f"{case}.zarr", [(np.zeros((64, 64), np.uint8), [1.0, 1.0])], metadata)
    with pytest.raises(ImageReadError, match=rf"^{tmp_path / case}\.zarr: malformed OME-Zarr metadata: {message}"):
        open_source(path)
    assert ngff.zarr_pixel_size(path) is None  # the pixel size, read first, leaves the message to open_source


def test_the_command_line_says_malformed_metadata_in_one_line(tmp_path, capsys):
    from napari_nucleiseg.cli import main

    path = _ome_zarr(tmp_path / "bad.zarr", [(np.zeros((64, 64), np.uint8), [1.0, 1.0])], "x")
    assert main(["segment", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.zarr: malformed OME-Zarr metadata" in err


def test_a_zarr_chunk_too_large_to_decode_is_refused_before_any_read(tmp_path):
    # a few hundred bytes on disk that declare one 20000x20000 chunk (381 MiB decoded)
    zarr.create_array(str(tmp_path / "bomb.zarr"), shape=(20000, 20000), chunks=(20000, 20000), dtype="uint8")
    with pytest.raises(ImageReadError, match=r"bomb\.zarr: one zarr chunk is 20000x20000 uint8 pixels "
                                             r"\(381 MiB decoded\).*must be re-chunked"):
        open_source(tmp_path / "bomb.zarr")
    zarr.create_array(str(tmp_path / "fine.zarr"), shape=(20000, 20000), chunks=(1024, 1024), dtype="uint8")
    assert open_source(tmp_path / "fine.zarr").shape == (20000, 20000)


def test_a_tiff_strip_too_large_is_refused_unless_it_is_memory_mapped(tmp_path, monkeypatch):
    monkeypatch.setattr(source, "MAX_CHUNK_BYTES", 2**16)  # 256x256 uint8 pixels
    image = np.arange(300 * 400, dtype=np.uint16).reshape(300, 400).astype(np.uint8)
    tifffile.imwrite(tmp_path / "strip.tif", image, compression="zlib", rowsperstrip=300)
    with pytest.raises(ImageReadError, match=r"strip\.tif: one tile/strip is 300x400 uint8 .*must be re-chunked"):
        open_source(tmp_path / "strip.tif")
    tifffile.imwrite(tmp_path / "tiled.tif", image, compression="zlib", tile=(128, 128))
    tifffile.imwrite(tmp_path / "plain.tif", image)  # uncompressed, one strip: mapped, a window read alone
    for name in ("tiled.tif", "plain.tif"):
        src = open_source(tmp_path / name)
        np.testing.assert_array_equal(src.read(slice(250, 266), slice(10, 26)), image[250:266, 10:26])
    assert isinstance(src.array, np.memmap)
    wide = np.arange(300 * 400, dtype=np.uint16).reshape(300, 400)  # ImageJ's default: big-endian, one strip
    tifffile.imwrite(tmp_path / "big_endian.tif", wide, byteorder=">", imagej=True)
    src = open_source(tmp_path / "big_endian.tif")  # it was refused like a compressed strip
    region = src.read(slice(250, 266), slice(10, 26))
    assert region.dtype.isnative and src.dtype == np.uint16
    np.testing.assert_array_equal(region, wide[250:266, 10:26])
