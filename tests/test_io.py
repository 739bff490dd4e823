import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from napari_nucleiseg.errors import ImageReadError
from napari_nucleiseg.io.images import read_dsb_folder, read_image, read_labels
from napari_nucleiseg.io.writers import write_tiff


def test_png_grey_rgb_rgba_and_jpeg(tmp_path):
    grey = (np.arange(64 * 48) % 251).astype(np.uint8).reshape(64, 48)
    rgb = np.stack([grey, grey // 2, grey // 3], -1)
    rgba = np.concatenate([rgb, np.full((64, 48, 1), 255, np.uint8)], -1)
    for name, arr in (("g.png", grey), ("rgb.png", rgb), ("rgba.png", rgba)):
        iio.imwrite(tmp_path / name, arr)
        np.testing.assert_array_equal(read_image(tmp_path / name), arr)
    iio.imwrite(tmp_path / "x.jpg", rgb)
    assert read_image(tmp_path / "x.jpg").shape == (64, 48, 3)
    grey_alpha = np.stack([grey, np.full_like(grey, 255)], -1)
    iio.imwrite(tmp_path / "la.png", grey_alpha)
    np.testing.assert_array_equal(read_image(tmp_path / "la.png"), grey)  # alpha dropped


def test_tiff_16bit_multipage_and_ome(tmp_path):
    a = (np.arange(3 * 32 * 40) * 17 % 65535).astype(np.uint16).reshape(3, 32, 40)
    tifffile.imwrite(tmp_path / "stack.tif", a, photometric="minisblack")
    np.testing.assert_array_equal(read_image(tmp_path / "stack.tif"), a)
    tifffile.imwrite(tmp_path / "img.ome.tif", a[0], ome=True, metadata={"axes": "YX"})
    np.testing.assert_array_equal(read_image(tmp_path / "img.ome.tif"), a[0])


@pytest.mark.parametrize("name", ["bad.tif", "bad.png", "bad.jpg"])
@pytest.mark.parametrize("content,reason", [(b"", "empty"), (b"not an image at all", "cannot be decoded")])
def test_bad_files_name_the_file_and_reason_in_one_line(tmp_path, content, reason, name):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(ImageReadError) as e:
        read_image(p)
    assert name in str(e.value) and reason in str(e.value)
    assert "\n" not in str(e.value) and "pip install" not in str(e.value)


def test_missing_and_unsupported(tmp_path):
    with pytest.raises(ImageReadError, match="not found"):
        read_image(tmp_path / "nope.png")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ImageReadError, match="unsupported file type"):
        read_image(tmp_path / "notes.txt")


def test_dsb_folder_layout(tmp_path):
    d = tmp_path / "abc"
    (d / "images").mkdir(parents=True)
    (d / "masks").mkdir()
    img = np.zeros((20, 20, 4), np.uint8)
    iio.imwrite(d / "images" / "abc.png", img)
    for i, (y, x) in enumerate([(2, 2), (10, 10)]):
        m = np.zeros((20, 20), np.uint8)
        m[y: y + 5, x: x + 5] = 255
        iio.imwrite(d / "masks" / f"m{i}.png", m)
    image, labels = read_dsb_folder(d)
    assert image.shape == (20, 20, 4)
    assert labels.max() == 2 and (labels > 0).sum() == 50


def test_shared_dsb_original_layout(dsb_dir):
    folders = sorted((dsb_dir / "original_layout").iterdir())
    image, labels = read_dsb_folder(folders[0])
    assert labels is not None and labels.max() == len(list((folders[0] / "masks").glob("*.png")))
    assert image.shape[:2] == labels.shape


def test_atomic_tiff_roundtrip(tmp_path):
    lab = np.arange(100, dtype=np.uint16).reshape(10, 10)
    write_tiff(tmp_path / "out" / "l.tif", lab)
    np.testing.assert_array_equal(read_labels(tmp_path / "out" / "l.tif"), lab)
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["l.tif"]


def test_overlay_keeps_the_colour_balance_of_a_stained_image():
    """A lavender H&E-like background stays lavender (blue above green), not stretched per channel."""
    from napari_nucleiseg.io.overlay import overlay_png

    rng = np.random.default_rng(0)
    image = np.empty((64, 64, 3), np.uint8)
    image[:] = (200, 170, 215)
    image[20:30, 20:30] = (90, 40, 140)  # a dark purple nucleus
    image = np.clip(image + rng.integers(-5, 6, image.shape), 0, 255).astype(np.uint8)
    labels = np.zeros((64, 64), np.int32)
    labels[20:30, 20:30] = 1
    out = overlay_png(image, labels)
    background = out[45:60, 45:60].reshape(-1, 3).mean(0)
    assert background[2] > background[1] + 20 and background[0] > background[1] + 10
    np.testing.assert_allclose(background, image[45:60, 45:60].reshape(-1, 3).mean(0), atol=1)
    assert (out[20, 20:30] == (255, 220, 0)).all()  # the outline is drawn
    # a 16-bit colour image: one stretch for all channels keeps blue above green
    out16 = overlay_png(image.astype(np.uint16) * 200, labels)
    bg16 = out16[45:60, 45:60].reshape(-1, 3).mean(0)
    assert bg16[2] > bg16[1] + 20


def test_a_dsb_mask_of_another_size_is_one_line(tmp_path):
    from napari_nucleiseg._napari.reader import get_reader

    folder = tmp_path / "s1"
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    iio.imwrite(folder / "images" / "s1.png", np.zeros((64, 64), np.uint8))
    iio.imwrite(folder / "masks" / "m1.png", np.full((32, 32), 255, np.uint8))
    with pytest.raises(ImageReadError, match=r"m1.png: mask of 32x32 pixels for an image of 64x64"):
        read_dsb_folder(folder)
    assert get_reader(str(folder)) is None


def test_colour_labels_get_one_label_per_colour(tmp_path):
    rng = np.random.default_rng(0)
    truth = np.zeros((60, 60), np.int32)
    for i in range(9):
        truth[(i // 3) * 20 + 2:(i // 3) * 20 + 18, (i % 3) * 20 + 2:(i % 3) * 20 + 18] = i + 1
    colours = np.vstack([[0, 0, 0], rng.integers(1, 256, (9, 3))]).astype(np.uint8)
    colours[2, 0] = colours[1, 0]  # two nuclei that share their red value
    iio.imwrite(tmp_path / "colour.png", colours[truth])
    back = read_labels(tmp_path / "colour.png")
    assert back.max() == 9 and (back == 0).sum() == (truth == 0).sum()
    assert len({(t, b) for t, b in zip(truth.ravel(), back.ravel())}) == 10  # one label per nucleus
    grey = np.repeat(truth.astype(np.uint8)[..., None], 3, -1)
    iio.imwrite(tmp_path / "grey.png", grey)
    np.testing.assert_array_equal(read_labels(tmp_path / "grey.png"), truth)


def test_overlay_of_a_huge_float64_image_shows_the_image(tmp_path):
    import warnings

    from napari_nucleiseg.inference.pipeline import segment
    from napari_nucleiseg.io.results import write_results
    from napari_nucleiseg.synthetic import synthetic_nuclei

    img, _ = synthetic_nuclei((96, 96), n_nuclei=5, seed=2)
    huge = img.astype(np.float64) * 1e300
    seg = segment(huge, device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow in a cast
        write_results(seg, huge, tmp_path / "h", probability=False, uncertainty=False, overlay=True)
    shown = iio.imread(tmp_path / "h_overlay.png")[..., :3]
    background = shown[seg.labels == 0]
    assert background.std() > 5  # the image, not black
