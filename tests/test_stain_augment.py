import numpy as np
import tifffile
from skimage import data
from skimage.color import rgb2hed

from napari_nucleiseg.inference.preprocess import prepare_channels
from napari_nucleiseg.training.augment import Augmenter
from napari_nucleiseg.training.dataset import Sample, load_samples
from napari_nucleiseg.training.stain_augment import hed_jitter, stain_variants

IHC = data.immunohistochemistry()[:128, :128]


def test_no_jitter_gives_the_image_back():
    out = hed_jitter(IHC, np.random.default_rng(0), scale=(0, 0, 0), shift=0.0)
    assert out.dtype == np.float32 and out.shape == IHC.shape
    assert np.abs(out - IHC / IHC.max()).max() < 2e-3


def test_jitter_scales_one_stain_and_leaves_the_others():
    rng = np.random.default_rng(1)
    out = hed_jitter(IHC, rng, scale=(0.5, 0.0, 0.0), shift=0.0)
    before, after = rgb2hed(IHC / IHC.max()), rgb2hed(out)
    strong = before[..., 0] > np.percentile(before[..., 0], 75)
    ratio = after[..., 0][strong] / before[..., 0][strong]
    assert abs(np.log(np.median(ratio))) > 0.01  # haematoxylin changed by one factor ...
    assert np.percentile(ratio, 90) - np.percentile(ratio, 10) < 0.05 * np.median(ratio)
    unclipped = (out < 0.999).all(-1) & (out > 0.001).all(-1)
    assert np.abs(after[..., 1:] - before[..., 1:])[unclipped].max() < 0.01  # ... eosin and DAB did not


def test_variants_are_seeded_by_name_and_prepared_as_at_inference():
    a = stain_variants(IHC, "tile-1", 3, channels=2, stain_signal="red")
    b = stain_variants(IHC, "tile-1", 3, channels=2, stain_signal="red")
    c = stain_variants(IHC, "tile-2", 3, channels=2, stain_signal="red")
    base = prepare_channels(IHC, channels=2, kind="stained", stain_signal="red")
    assert len(a) == 3 and all(v.shape == base.shape and v.dtype == np.float32 for v in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0]) and not np.array_equal(a[0], a[1])
    assert all(np.abs(v - base).mean() > 1e-3 for v in a)


def test_only_stained_colour_images_get_variants(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    grey = np.zeros((64, 64), np.uint8)
    grey[20:40, 20:40] = 200
    for name, img in (("ihc", IHC), ("fluo", grey)):
        tifffile.imwrite(tmp_path / "images" / f"{name}.tif", img)
        tifffile.imwrite(tmp_path / "labels" / f"{name}.tif", np.zeros(img.shape[:2], np.uint16))
    samples = {s.name: s for s in load_samples(tmp_path, stain_variants=2)}
    assert samples["ihc"].kind == "stained" and len(samples["ihc"].variants) == 2
    assert samples["fluo"].variants == ()
    assert all(s.variants == () for s in load_samples(tmp_path))


def test_augmenter_draws_the_image_and_its_variants():
    s = Sample(np.zeros((64, 64), np.float32), np.zeros((64, 64), np.int32), "s", "stained",
               (np.ones((64, 64), np.float32),))
    aug = Augmenter(size=32, scale=(1.0, 1.0), elastic=0.0, intensity=False, seed=0)
    x, _ = aug.crops([s], 40)
    centres = x[:, 0, 16, 16].numpy()
    assert {0.0, 1.0} <= set(np.round(centres, 3).tolist())


def test_rendered_fluorescence_looks_stained_with_dark_nuclei():
    from napari_nucleiseg.inference.kinds import image_kind
    from napari_nucleiseg.synthetic import synthetic_nuclei
    from napari_nucleiseg.training.stain_render import render_stained

    img, lab = synthetic_nuclei((128, 128), n_nuclei=15, radius=(5, 9), seed=3)
    rgb = render_stained(img, np.random.default_rng(0))
    assert rgb.shape == (128, 128, 3) and rgb.dtype == np.float32
    assert 0.0 <= rgb.min() and rgb.max() <= 1.0
    assert image_kind((rgb * 255).astype(np.uint8)) == "stained"
    red = rgb[..., 0]
    assert red[lab > 0].mean() < red[lab == 0].mean() - 0.15  # haematoxylin absorbs red
    assert rgb[lab == 0][:, 1].mean() < rgb[lab == 0][:, 2].mean()  # eosin: pink background


def test_rendered_samples_keep_labels_and_are_seeded():
    from napari_nucleiseg.synthetic import synthetic_nuclei
    from napari_nucleiseg.training.stain_render import rendered_samples

    samples = []
    for i in range(4):
        img, lab = synthetic_nuclei((64, 64), n_nuclei=5, radius=(4, 7), seed=i)
        samples.append(Sample(prepare_channels(img, kind="fluorescence"), lab, f"f{i}"))
    samples.append(Sample(np.zeros((64, 64), np.float32), np.zeros((64, 64), np.int32), "st", "stained"))
    a = rendered_samples(samples, 3, stain_signal="red")
    b = rendered_samples(samples, 3, stain_signal="red")
    assert len(a) == 3 and all(s.kind == "stained" and "rendered" in s.name for s in a)
    by_name = {s.name: s for s in samples}
    for s in a:
        assert np.array_equal(s.labels, by_name[s.name.split(" ")[0]].labels)
        assert s.image[s.labels > 0].mean() > s.image[s.labels == 0].mean() + 0.3  # nuclei bright in the input
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b))
    assert len(rendered_samples(samples, 10)) == 4  # fluorescence samples only
