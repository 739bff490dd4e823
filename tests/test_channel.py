"""The nucleus channel of multichannel images: in memory, from files (CLI, batch), out of core."""

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from napari_nucleiseg import segment
from napari_nucleiseg.cli import main
from napari_nucleiseg.errors import InvalidImageError, OptionError
from napari_nucleiseg.evaluation.metrics import evaluate_image
from napari_nucleiseg.inference.checks import nucleus_channel
from napari_nucleiseg.io.images import read_image, read_labels
from napari_nucleiseg.options import SegmentOptions
from napari_nucleiseg.synthetic import synthetic_nuclei


@pytest.fixture(scope="module")
def composite():
    """DAPI-like nuclei in blue and a brighter cytoplasm stain around them in red, 8-bit RGB."""
    nuclei, truth = synthetic_nuclei((256, 256), n_nuclei=25, touching=0.0, seed=7)
    blue = nuclei.astype(np.float32) / nuclei.max() * 200
    cells = ndi.grey_dilation(ndi.gaussian_filter((truth > 0).astype(np.float32), 2), size=(15, 15))
    red = cells / max(cells.max(), 1e-6) * 250
    rgb = np.stack([red, np.zeros_like(red), blue], -1)
    return np.clip(rgb, 0, 255).astype(np.uint8), truth


def test_the_option_is_checked():
    for bad in (-1, 1.5, "2", True):
        with pytest.raises(OptionError, match="channel"):
            SegmentOptions(channel=bad)
    assert SegmentOptions(channel=np.int64(2)).channel == 2 and type(SegmentOptions(channel=np.int64(2)).channel) is int


def test_a_channel_the_image_lacks_is_one_clear_line():
    with pytest.raises(InvalidImageError, match="one channel"):
        nucleus_channel(np.zeros((32, 32)), 1)
    with pytest.raises(InvalidImageError, match=r"3 channels \(0-2\)"):
        nucleus_channel(np.zeros((32, 32, 3)), 3)
    assert nucleus_channel(np.zeros((32, 32)), 0).shape == (32, 32)
    with pytest.raises(InvalidImageError, match="channel=0 or 1"):
        segment(np.zeros((32, 32, 2)), model="unet16")


def test_the_nucleus_channel_of_a_composite_is_segmented_alone(composite):
    rgb, truth = composite
    chosen = segment(rgb, model="unet16", channel=2)
    every = segment(rgb, model="unet16")
    ap_chosen, ap_every = evaluate_image(truth, chosen.labels)["ap50"], evaluate_image(truth, every.labels)["ap50"]
    assert ap_chosen >= 0.8 and ap_chosen > ap_every + 0.2, (ap_chosen, ap_every)
    assert chosen.settings["channel"] == 2 and chosen.settings["image_kind"] == "fluorescence"
    # measured on the nucleus channel: the mean intensity is the blue one
    k = int(chosen.table["label"].iloc[0])
    assert chosen.table["mean_intensity"].iloc[0] == pytest.approx(rgb[..., 2][chosen.labels == k].mean(), rel=1e-4)
    # and every channel beside it, a marker's too
    columns = list(chosen.table.columns)
    assert columns[columns.index("mean_intensity") + 1:][:3] == ["mean_intensity_c0", "mean_intensity_c1",
                                                                 "mean_intensity_c2"]
    for c in range(3):
        assert chosen.table[f"mean_intensity_c{c}"].iloc[0] == pytest.approx(rgb[..., c][chosen.labels == k].mean())
    assert "mean_intensity_c0" not in every.table.columns  # no channel chosen: one image, one intensity


def test_a_repainted_nucleus_loses_its_channel_intensities_like_its_other_image_measures(composite):
    from napari_nucleiseg.inference.edited import remeasured

    rgb, _ = composite
    seg = segment(rgb, model="unet16", channel=2)
    labels = seg.labels.copy()
    k = int(seg.table["label"].iloc[0])
    rows = np.nonzero(seg.labels == k)
    labels[rows[0][: len(rows[0]) // 2], rows[1][: len(rows[1]) // 2]] = 0  # half of it erased
    table = remeasured(labels, seg.table).set_index("label")
    assert table.loc[k, "edited"] and np.isnan(table.loc[k, "mean_intensity_c0"])
    other = int(seg.table["label"].iloc[1])
    assert table.loc[other, "mean_intensity_c1"] == pytest.approx(seg.table.set_index("label").loc[other,
                                                                                             "mean_intensity_c1"])


def test_two_and_five_channel_tiffs_from_the_command_line(tmp_path, composite):
    rgb, truth = composite
    two = np.stack([rgb[..., 0], rgb[..., 2]])  # (C, Y, X): marker, DAPI
    five = np.stack([rgb[..., 0], rgb[..., 0] // 2, rgb[..., 0] // 3, rgb[..., 2], rgb[..., 0] // 4])
    tifffile.imwrite(tmp_path / "two.tif", two, metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "five.tif", five, metadata={"axes": "CYX"})
    assert read_image(tmp_path / "five.tif").shape == (5, 256, 256)  # without a channel: a stack
    assert read_image(tmp_path / "five.tif", channels=True).shape == (256, 256, 5)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "two.tif"), "--out", str(out), "--model", "unet16", "--channel", "1",
                 "--overlay"]) == 0
    assert main(["segment", str(tmp_path / "five.tif"), "--out", str(out), "--model", "unet16", "--channel", "3"]) == 0
    for stem in ("two", "five"):
        labels = read_labels(out / f"{stem}_labels.tif")
        assert labels.shape == (256, 256) and evaluate_image(truth, labels)["ap50"] >= 0.8
    assert (out / "two_overlay.png").exists()
    assert main(["segment", str(tmp_path / "two.tif"), "--out", str(out), "--channel", "2"]) == 1


def test_batch_takes_the_channel(tmp_path, composite):
    from napari_nucleiseg.batch import BatchOptions, run_batch

    rgb, truth = composite
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        tifffile.imwrite(folder / f"well{i}.tif", np.stack([rgb[..., 0], rgb[..., 2]]), metadata={"axes": "CYX"})
    result = run_batch(folder, tmp_path / "out", BatchOptions(model="unet16", channel=1))
    assert result.n_ok == 2
    assert evaluate_image(truth, read_labels(tmp_path / "out" / "well0_labels.tif"))["ap50"] >= 0.8


def test_out_of_core_reads_the_channel_alone(tmp_path, composite):
    pytest.importorskip("zarr")
    from napari_nucleiseg.outofcore import open_source

    rgb, _ = composite
    many = np.concatenate([rgb, rgb[..., :2]], axis=-1)  # (Y, X, 5)
    src = open_source(many, channel=2)
    assert src.shape == (256, 256)
    np.testing.assert_array_equal(src.read(slice(10, 50), slice(20, 90)), many[10:50, 20:90, 2])
    path = tmp_path / "five.tif"
    tifffile.imwrite(path, np.moveaxis(many, -1, 0), metadata={"axes": "CYX"})
    np.testing.assert_array_equal(open_source(path, channel=3).read(slice(0, 64), slice(0, 64)), many[:64, :64, 3])
    with pytest.raises(InvalidImageError, match="5 channels"):
        open_source(path, channel=5)
    with pytest.raises(InvalidImageError, match="choose the nucleus channel"):  # as in memory, not "save it alone"
        open_source(path)
    four = tmp_path / "four.tif"  # fluorescence channels, not colour
    tifffile.imwrite(four, np.moveaxis(many[..., :4], -1, 0), photometric="minisblack", metadata={"axes": "CYX"})
    with pytest.raises(InvalidImageError, match="4 channels"):
        open_source(four)
    np.testing.assert_array_equal(open_source(four, channel=1).read(slice(0, 64), slice(0, 64)), many[:64, :64, 1])
    tifffile.imwrite(tmp_path / "rgb.tif", rgb, photometric="rgb")
    assert open_source(tmp_path / "rgb.tif").read(slice(0, 8), slice(0, 8)).shape == (8, 8, 3)


def test_a_grey_stack_with_a_channel_is_still_a_stack(tmp_path, composite):
    rgb, _ = composite
    tifffile.imwrite(tmp_path / "stack.tif", np.stack([rgb[..., 2]] * 2))  # (Z, Y, X), no channel axis
    assert read_image(tmp_path / "stack.tif", channels=True).shape == (2, 256, 256, 1)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "stack.tif"), "--out", str(out), "--model", "unet16", "--channel", "0"]) == 0
    assert read_image(out / "stack_labels.tif").shape == (2, 256, 256)
    assert main(["segment", str(tmp_path / "stack.tif"), "--out", str(out), "--channel", "1"]) == 1


def test_out_of_core_segments_the_channel_as_in_memory(tmp_path):
    pytest.importorskip("zarr")
    from napari_nucleiseg.outofcore import segment_out_of_core
    from napari_nucleiseg.synthetic import synthetic_mosaic

    nuclei, _ = synthetic_mosaic((512, 512))
    two = np.stack([np.full_like(nuclei, nuclei.max()), nuclei])  # a flat bright channel, then the nuclei
    path = tmp_path / "two.tif"
    tifffile.imwrite(path, two, metadata={"axes": "CYX"})
    whole = segment(nuclei, model="unet16")
    result = segment_out_of_core(path, tmp_path / "out", model="unet16", channel=1, block=256)
    labels = np.asarray(result.labels())
    assert result.settings["channel"] == 1 and labels.shape == (512, 512)
    assert abs(int(labels.max()) - int(whole.labels.max())) <= 0.03 * whole.labels.max()
    assert evaluate_image(whole.labels, labels)["ap50"] >= 0.9


def test_channel_of_a_grey_stack_is_refused_not_misread():
    from napari_nucleiseg.inference.stack import segment_any

    stack = np.zeros((12, 96, 96), np.uint16)  # (Z, Y, X): taken as (Y, X, C) it would be 12 x 96 pixels
    with pytest.raises(InvalidImageError, match="stack of grey planes"):
        segment_any(stack, SegmentOptions(channel=0))
    many = np.zeros((96, 96, 12), np.uint16)  # a real channel axis of twelve
    assert segment_any(many, SegmentOptions(channel=11)).labels.shape == (96, 96)



def test_three_and_four_fluorescence_channels_are_channels_not_colour(tmp_path, composite):
    rgb, truth = composite
    four = np.stack([rgb[..., 2], rgb[..., 0], rgb[..., 0] // 2, rgb[..., 0] // 3])  # DAPI, GFP, RFP, Cy5
    tifffile.imwrite(tmp_path / "four.ome.tif", four, photometric="minisblack", metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "three.tif", four[:3], photometric="minisblack", metadata={"axes": "CYX"})
    tifffile.imwrite(tmp_path / "colour.tif", rgb, photometric="rgb")  # an RGB image: colour samples
    for name, n in (("four.ome.tif", 4), ("three.tif", 3)):
        with pytest.raises(InvalidImageError, match=f"{n} channels .*choose the nucleus channel"):
            read_image(tmp_path / name, for_segmentation=True)
        assert read_image(tmp_path / name, for_segmentation=True, channels=True).shape == (256, 256, n)
    assert read_image(tmp_path / "colour.tif", for_segmentation=True).shape == (256, 256, 3)
    out = tmp_path / "out"
    assert main(["segment", str(tmp_path / "four.ome.tif"), "--out", str(out), "--model", "unet16"]) == 1
    assert not out.exists() or not list(out.glob("four*"))
    assert main(["segment", str(tmp_path / "four.ome.tif"), "--out", str(out), "--model", "unet16",
                 "--channel", "0"]) == 0
    assert evaluate_image(truth, read_labels(next(out.glob("four*_labels.tif"))))["ap50"] >= 0.8


def test_an_rgb_image_stored_as_three_grey_planes_with_ome_red_green_blue_channels_stays_colour(tmp_path):
    from napari_nucleiseg.outofcore import open_source

    rgb = np.random.default_rng(0).integers(0, 255, (3, 64, 80), dtype=np.uint8)
    for name, attrs in (("coloured.ome.tif", ('Color="-16776961"', 'Color="16711935"', 'Color="65535"')),
                        ("named.ome.tif", ('Name="Red"', 'Name="Green"', 'Name="Blue"')),
                        ("stains.ome.tif", ('Name="DAPI"', 'Name="GFP"', 'Name="RFP"'))):
        channels = "".join(f'<Channel ID="Channel:0:{i}" SamplesPerPixel="1" {a}/>' for i, a in enumerate(attrs))
        xml = ('<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
               '<Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="80" SizeY="64" '
               f'SizeC="3" SizeZ="1" SizeT="1">{channels}<TiffData IFD="0" PlaneCount="3"/></Pixels></Image></OME>')
        with tifffile.TiffWriter(tmp_path / name) as tif:  # as Bio-Formats' bfconvert -separate writes RGB
            for i in range(3):
                tif.write(rgb[i], photometric="minisblack", description=xml if i == 0 else None, metadata=None)
        if name == "stains.ome.tif":  # fluorescence channels: one must be chosen
            with pytest.raises(InvalidImageError, match="3 channels"):
                read_image(tmp_path / name, for_segmentation=True)
            continue
        np.testing.assert_array_equal(read_image(tmp_path / name, for_segmentation=True), np.moveaxis(rgb, 0, -1))
        assert open_source(tmp_path / name).read(slice(0, 8), slice(0, 8)).shape == (8, 8, 3)
