import numpy as np
import pytest
from skimage.transform import resize

from napari_nucleiseg import segment
from napari_nucleiseg.evaluation.metrics import evaluate_image
from napari_nucleiseg.inference.pipeline import STAGES
from napari_nucleiseg.inference.sizing import (
    AUTO,
    COARSE_MIN_NUCLEI,
    COARSE_MIN_SIDE,
    COARSE_TEXTURE,
    COARSE_TRUSTED,
    REFINE_MIN_ZOOM,
    coarse_diameter,
    median_diameter,
    parse_diameter,
    pooled_diameter,
    pooled_look,
    prediction_zoom,
    saw_texture,
    shrink_labels,
    sized_prediction,
    texture_look,
    trusted_look,
    zoom_for,
)
from napari_nucleiseg.synthetic import synthetic_nuclei


def discs(shape, centres, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    labels = np.zeros(shape, np.int32)
    for i, (cy, cx) in enumerate(centres, 1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = i
    return labels


def test_median_diameter_of_discs():
    labels = discs((200, 200), [(50, 50), (50, 150), (150, 100)], 20)
    assert median_diameter(labels) == pytest.approx(40, rel=0.03)
    assert median_diameter(np.zeros((10, 10), np.int32)) is None
    assert pooled_diameter([labels, discs((100, 100), [(50, 50)], 10)]) == pytest.approx(40, rel=0.03)


def test_zoom_only_shrinks_and_ignores_small_changes():
    assert zoom_for(40, 20) == pytest.approx(0.5)
    assert zoom_for(21, 20) == 1.0  # within MIN_CHANGE: not worth a second pass
    assert zoom_for(10, 20) == 1.0  # never enlarges
    assert zoom_for(None, 20) == 1.0 and zoom_for(40, None) == 1.0


def test_prediction_zoom_enlarges_only_much_smaller_nuclei_within_caps():
    assert prediction_zoom(40, 20, (500, 500)) == pytest.approx(0.5)  # shrinking as zoom_for
    assert prediction_zoom(8.5, 20, (500, 500)) == 2.0  # at most MAX_ENLARGE
    assert prediction_zoom(9.5, 20, (500, 500)) == 1.0  # above ENLARGE_BELOW of the target
    assert prediction_zoom(5, 20, (3000, 3000)) == pytest.approx(4 / 3)  # MAX_ENLARGED_PIXELS
    assert prediction_zoom(5, 20, (4000, 4000)) == 1.0  # no room left to enlarge
    assert prediction_zoom(None, 20, (500, 500)) == 1.0 and prediction_zoom(5, None, (500, 500)) == 1.0


def test_segment_enlarges_tiny_nuclei_and_keeps_full_size_outputs():
    """Nuclei a third of the training size (low magnification): predicted on an enlarged copy."""
    image, truth = synthetic_nuclei(shape=(256, 256), n_nuclei=60, radius=(3, 5), seed=1)[:2]
    steps = []
    small_tiles = segment(image, tile=128, overlap=16, progress=lambda done, total: steps.append((done, total)))
    auto, native = segment(image), segment(image, diameter=None)
    assert small_tiles.settings["zoom"] == auto.settings["zoom"] == 2.0 and native.settings["zoom"] == 1.0
    first = steps[0][1] // 2  # the first pass's tiles; the enlarged pass has more, yet fills the reserved half
    assert len(steps) > 2 * first and {t for _, t in steps} == {2 * first} and steps[-1] == (2 * first, 2 * first)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)
    assert auto.labels.shape == auto.probability.shape == auto.uncertainty.shape == image.shape
    ap_auto = evaluate_image(truth, auto.labels)["ap50"]
    assert ap_auto >= 0.9 and ap_auto > evaluate_image(truth, native.labels)["ap50"]


def test_parse_diameter():
    assert parse_diameter("auto") == AUTO and parse_diameter("AUTO") == AUTO
    assert parse_diameter("35") == 35.0
    assert parse_diameter("off") is None and parse_diameter("0") is None
    assert parse_diameter(None) is None and parse_diameter(0) is None and parse_diameter(12) == 12.0
    for bad in ("big", "-3", "nan", -3):
        with pytest.raises(ValueError, match="diameter"):
            parse_diameter(bad)
    with pytest.raises(ValueError, match="diameter"):
        segment(np.zeros((32, 32), np.float32), diameter="large")


def _recording_predict(calls):
    def predict(image):
        calls.append(image.shape)
        fg = np.zeros(image.shape, np.float32)
        h, w = image.shape
        fg[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = 1.0  # one nucleus, half the image across
        return {"foreground": fg, "border": np.zeros_like(fg), "variance": np.zeros_like(fg)}
    return predict


def test_sized_prediction_passes():
    post = {"threshold": 0.5, "border_threshold": 0.5, "min_size": 4}
    image = np.zeros((200, 240), np.float32)

    calls = []  # auto: a first pass finds ~110 px nuclei, a second one runs shrunk to the target
    maps, labels, zoom = sized_prediction(_recording_predict(calls), image, post, target=20.0)
    assert calls[0] == (200, 240) and len(calls) == 2
    assert calls[1][0] < 60 and zoom < 0.3
    assert maps["foreground"].shape == labels.shape == (200, 240) and labels.max() == 1

    calls = []  # a given diameter needs no first pass
    _, _, zoom = sized_prediction(_recording_predict(calls), image, post, target=20.0, diameter=40.0)
    assert calls == [(100, 120)] and zoom == pytest.approx(0.5)

    for target, diameter in ((20.0, None), (None, AUTO)):  # switched off, or a model without a target
        calls = []
        _, labels, zoom = sized_prediction(_recording_predict(calls), image, post, target, diameter)
        assert calls == [(200, 240)] and zoom == 1.0 and labels.max() == 1


def _squares_predict(calls, n):
    """``n`` square nuclei an eighth of the image across, on a 4 x 4 grid."""
    def predict(image):
        calls.append(image.shape)
        fg = np.zeros(image.shape, np.float32)
        side = image.shape[0] // 8
        for i in range(n):
            y, x = (i // 4) * 2 * side, (i % 4) * 2 * side
            fg[y: y + side, x: x + side] = 1.0
        return {"foreground": fg, "border": np.zeros_like(fg), "variance": np.zeros_like(fg)}
    return predict


def test_coarse_diameter_measures_on_a_quarter_size_view():
    post = {"threshold": 0.5, "border_threshold": 0.5, "min_size": 4}
    calls = []  # squares of 64 px in a 512 px image, seen at a quarter
    look = coarse_diameter(_squares_predict(calls, 6), np.zeros((512, 512), np.float32), post, 20.0)
    assert look == pytest.approx(64 * 2 / np.sqrt(np.pi), rel=0.03) and calls == [(128, 128)]
    # no target, or too small an image: not looked at
    assert coarse_diameter(_squares_predict([], 6), np.zeros((512, 512), np.float32), post, None) is None
    calls = []
    small = np.zeros((COARSE_MIN_SIDE - 1, 512), np.float32)
    assert coarse_diameter(_squares_predict(calls, 6), small, post, 20.0) is None and calls == []


def test_a_look_of_a_few_blobs_gives_no_size():
    """A dense field with a saturated disk of debris was seen at a quarter size as two blobs, and
    the image shrunk 13 times (docs/sizing.md): a look needs ``COARSE_MIN_NUCLEI`` nuclei."""
    post = {"threshold": 0.5, "border_threshold": 0.5, "min_size": 4}
    image = np.zeros((512, 512), np.float32)
    enough = coarse_diameter(_squares_predict([], COARSE_MIN_NUCLEI), image, post, 20.0)
    assert enough == pytest.approx(64 * 2 / np.sqrt(np.pi), rel=0.03)
    assert coarse_diameter(_squares_predict([], COARSE_MIN_NUCLEI - 1), image, post, 20.0) is None
    assert coarse_diameter(_recording_predict([]), image, post, 20.0) is None  # one nucleus
    # out of core the looks of several regions are pooled: the count is over them all
    two, three = np.zeros((64, 64), np.int32), np.zeros((64, 64), np.int32)
    for lab, n in ((two, 2), (three, 3)):
        for i in range(n):
            lab[i * 16: i * 16 + 8, :8] = i + 1
    assert pooled_look([two, two]) is None
    assert pooled_look([two, three]) == pytest.approx(4 * np.sqrt(4 * 64 / np.pi))


def test_a_look_is_trusted_alone_only_for_very_large_nuclei():
    assert trusted_look(COARSE_TRUSTED * 20.0, 20.0) and not trusted_look(COARSE_TRUSTED * 20.0 - 1, 20.0)
    assert not trusted_look(None, 20.0) and not trusted_look(300.0, None)


def test_a_look_overrules_a_first_pass_that_measured_texture():
    big = COARSE_TEXTURE * 20.0
    assert saw_texture(big / 2 - 1, big, 20.0) and saw_texture(None, big, 20.0)
    assert not saw_texture(big / 2 + 1, big, 20.0)  # the two agree well enough: the first pass stands
    assert not saw_texture(5.0, big - 1, 20.0)  # a smaller look may be clumps of small nuclei
    assert not saw_texture(5.0, None, 20.0) and not saw_texture(5.0, big, None)
    # stained tissue's look may be clumps of crowded nuclei: it never overrules
    assert texture_look(big, "fluorescence") == texture_look(big, "brightfield") == big
    assert texture_look(big, "stained") is None


def _texture_predict(calls):
    """Full size: a grid of 11 px dots (texture); any other size: one nucleus half the image across."""
    def predict(image):
        calls.append(image.shape)
        if image.shape != (200, 240):
            return _recording_predict([])(image)
        fg = np.zeros(image.shape, np.float32)
        yy, xx = np.mgrid[:200, :240]
        fg[((yy % 14) - 7) ** 2 + ((xx % 14) - 7) ** 2 <= 25] = 1.0
        return {"foreground": fg, "border": np.zeros_like(fg), "variance": np.zeros_like(fg)}
    return predict


def test_sized_prediction_takes_the_look_when_the_first_pass_saw_texture():
    post = {"threshold": 0.5, "border_threshold": 0.5, "min_size": 4}
    image = np.zeros((200, 240), np.float32)
    calls = []
    _, labels, zoom = sized_prediction(_texture_predict(calls), image, post, target=20.0, look=100.0)
    assert calls == [(200, 240), (40, 48)] and zoom == pytest.approx(0.2) and labels.max() == 1
    calls = []  # without a look the dots are taken for nuclei of 11 px: no rescaling
    _, labels, zoom = sized_prediction(_texture_predict(calls), image, post, target=20.0)
    assert calls == [(200, 240)] and zoom == 1.0 and labels.max() > 200


def test_segment_measures_huge_textured_nuclei_on_a_coarse_look():
    """Nuclei 5x the training size (a 100x objective): at full size the network finds their
    texture (hundreds of fragments); the coarse look finds the nuclei and sizes the image."""
    small, truth = synthetic_nuclei((160, 160), n_nuclei=10, radius=(12, 16), noise=0.08, seed=1)[:2]
    image = resize(small.astype(np.float32), (800, 800), order=1, preserve_range=True).astype(np.uint16)
    truth = resize(truth, (800, 800), order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    native = segment(image, diameter=None)  # the first pass at full size finds bits of texture
    assert median_diameter(native.labels) < 0.1 * median_diameter(truth)
    assert evaluate_image(truth, native.labels)["ap50"] < 0.2
    steps, stages = [], []
    auto = segment(image, progress=lambda done, total: steps.append((done, total)), stage=stages.append)
    assert auto.zoom < 0.25 and auto.labels.shape == image.shape
    assert evaluate_image(truth, auto.labels)["ap50"] >= 0.9
    # one pass, announced and counted as one; the look's few tiles are not counted
    assert stages == [STAGES[k] for k in ("load", "predict", "measure")] and steps[-1] == (1, 1)


def test_only_models_whose_card_allows_it_look(monkeypatch):
    """The look's thresholds were checked with the default model's routes; another model's maps can
    read a dense field as a few huge nuclei, so it measures on its first pass alone."""
    from napari_nucleiseg import zoo
    from napari_nucleiseg.inference import pipeline

    looks = []
    real = pipeline.coarse_diameter
    monkeypatch.setattr(pipeline, "coarse_diameter", lambda *a, **k: looks.append(1) or real(*a, **k))
    image = synthetic_nuclei((512, 512), n_nuclei=30, seed=2)[0]
    assert zoo.get_entry("default").coarse_look() and not zoo.get_entry("unet16").coarse_look()
    segment(image)
    assert len(looks) == 1
    segment(image, model="unet16")
    assert len(looks) == 1


def test_shrink_labels_keeps_ids():
    labels = discs((100, 100), [(30, 30), (70, 70)], 12)
    small = shrink_labels(labels, 0.5)
    assert small.shape == (50, 50) and set(np.unique(small)) == {0, 1, 2}


def test_segment_shrinks_large_nuclei_and_keeps_full_size_outputs():
    """Nuclei over twice the size of the training data's: auto sizing finds them all."""
    image, truth = synthetic_nuclei(shape=(384, 384), n_nuclei=14, radius=(22, 28), seed=1)[:2]
    steps, stages = [], []
    auto = segment(image, progress=lambda done, total: steps.append((done, total)), stage=stages.append)
    # the first pass counts against twice its tiles, the shrunk pass continues its count: never backwards
    assert steps == [(1, 2), (2, 2)]
    assert stages == [STAGES[k] for k in ("load", "size", "shrunk", "measure")]
    native = segment(image, diameter=None)
    assert auto.settings["zoom"] < 0.7 and native.settings["zoom"] == 1.0
    assert auto.labels.shape == auto.probability.shape == auto.uncertainty.shape == image.shape
    assert auto.table["area"].median() > 1000  # measured at full resolution
    ap_auto = evaluate_image(truth, auto.labels)["ap50"]
    ap_native = evaluate_image(truth, native.labels)["ap50"]
    assert ap_auto >= 0.95 and ap_auto > ap_native


def test_segment_leaves_training_sized_nuclei_alone(sample_dir):
    import tifffile

    image = tifffile.imread(sample_dir / "touching_nuclei.tif")
    steps = []
    seg = segment(image, progress=lambda done, total: steps.append((done, total)))
    assert seg.settings["zoom"] == 1.0 and seg.settings["diameter"] == AUTO
    fractions = [d / t for d, t in steps]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert steps[-1][0] == steps[-1][1]


def test_stack_progress_never_falls_across_the_shrunk_pass():
    """A stack of large-nuclei planes: each plane's shrunk pass must not move the bar backwards."""
    from napari_nucleiseg.inference.stack import segment_any
    from napari_nucleiseg.options import SegmentOptions

    planes = np.stack([synthetic_nuclei(shape=(256, 256), n_nuclei=6, radius=(22, 28), seed=s)[0]
                       for s in (1, 2)])
    seen = []
    seg = segment_any(planes, SegmentOptions(tile=128, overlap=16), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert min(seg.settings["zoom"]) < 1  # a second, shrunk pass ran
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert seen[0][1] == f"slice 1/2, {STAGES['load']}"
    assert any(STAGES["shrunk"] in m for _, m in seen) and any("slice 2/2" in m for _, m in seen)


def test_a_validation_image_enlarged_is_sized_from_the_look_not_its_texture(dsb_dir):
    """A DSB validation image enlarged 1.5x (nuclei about 3x the target): the full-size first pass
    measures half that (bits of texture), the coarse look measures the nuclei and overrules it
    (DSB score 0.395 without the rule, 0.591 with it; docs/sizing.md)."""
    from napari_nucleiseg.io.images import read_image, read_labels
    from napari_nucleiseg.training.dataset import find_pairs

    name = "724b6b7044522f6d5ea35b55f8fa71d0a45a28687be2b7cac3149943ab816eec"
    image_path, label_path = next((ip, lp) for n, ip, lp in find_pairs(dsb_dir / "train") if n == name)
    image, labels = np.asarray(read_image(image_path), np.float32)[..., :3], read_labels(label_path)
    shape = tuple(round(n * 1.5) for n in labels.shape)
    big = np.clip(np.round(resize(image, shape + (3,), order=1, preserve_range=True)), 0, 255).astype(np.uint8)
    truth = resize(labels, shape, order=0, preserve_range=True, anti_aliasing=False).astype(np.int32)
    seg = segment(big)
    assert seg.zoom < 0.4  # the first pass alone measured 1.47x the target: zoom 0.68
    assert evaluate_image(truth, seg.labels)["dsb_score"] >= 0.5


def test_debris_on_a_dense_field_does_not_size_it(dsb_dir):
    """A dense 603 x 1272 fluorescence validation image (289 nuclei) with a saturated disk over 1 %
    of the field, where it lies farthest from any nucleus (``experiments/robustness.py``'s debris):
    the coarse look saw two blobs, was trusted and shrank the image to a zoom of 0.074 (DSB score
    0.000); its nuclei are measured on the first pass and it stays at full size."""
    from scipy import ndimage as ndi

    from napari_nucleiseg.io.images import read_image, read_labels
    from napari_nucleiseg.training.dataset import find_pairs

    name = "20b20ab049372d184c705acebe7af026d3580f5fd5a72ed796e3622e1685af2f"
    image_path, label_path = next((ip, lp) for n, ip, lp in find_pairs(dsb_dir / "train") if n == name)
    image, labels = np.asarray(read_image(image_path))[..., :3].copy(), read_labels(label_path)
    h, w = labels.shape
    cy, cx = np.unravel_index(np.argmax(ndi.distance_transform_edt(labels == 0)), labels.shape)
    yy, xx = np.ogrid[:h, :w]
    disk = (yy - cy) ** 2 + (xx - cx) ** 2 <= 0.01 * h * w / np.pi
    image[disk] = 255
    seg = segment(image)
    assert seg.zoom == 1.0
    assert evaluate_image(np.where(disk, 0, labels), seg.labels)["dsb_score"] >= 0.3


def _disc_predict(shrunk_margin: float):
    """Four discs of radius 30 on 240 x 240, at any input size; a shrunk input's discs are
    ``shrunk_margin`` px (of that input) narrower, as a coarse pass draws them."""
    def predict(image):
        h, w = image.shape[-2:]
        scale = h / 240
        yy, xx = np.mgrid[:h, :w]
        radius = 30 * scale - (shrunk_margin if scale < 1 else 0)
        fg = np.zeros((h, w), np.float32)
        for cy, cx in ((60, 60), (60, 180), (180, 60), (180, 180)):
            fg[(yy - cy * scale) ** 2 + (xx - cx * scale) ** 2 <= radius**2] = 1.0
        return {"foreground": fg, "border": np.zeros_like(fg), "variance": np.zeros_like(fg)}
    return predict


def test_a_shrunk_image_takes_its_outlines_from_the_first_pass_too():
    post = {"threshold": 0.4, "border_threshold": 0.5, "min_size": 4}
    image = np.zeros((240, 240), np.float32)
    full_area = (_disc_predict(0)(image)["foreground"] > 0).sum() / 4
    _, labels, zoom = sized_prediction(_disc_predict(2.0), image, post, target=20.0, sharpen=True)
    assert REFINE_MIN_ZOOM <= zoom < 0.5 and labels.max() == 4
    areas = np.bincount(labels.ravel())[1:]
    # the shrunk pass alone draws them ~6 px narrower; its mean with the full-size pass is at least
    # 0.5 (> 0.4) over the full-size discs
    assert np.all(np.abs(areas - full_area) < 0.02 * full_area)
    for given in ({"diameter": 60.0, "sharpen": True}, {"sharpen": False}):  # no first pass; not asked
        _, coarse, _ = sized_prediction(_disc_predict(2.0), image, post, target=20.0, **given)
        assert coarse.max() == 4 and np.all(np.bincount(coarse.ravel())[1:] < 0.85 * full_area)
    # a first pass that saw only texture (the look overruled it) draws no outline
    texture = np.zeros((200, 240), np.float32)
    maps, one, zoom = sized_prediction(_texture_predict([]), texture, post, target=20.0, look=60.0, sharpen=True)
    assert REFINE_MIN_ZOOM <= zoom < 0.5 and one.max() == 1
    np.testing.assert_array_equal(one, maps["foreground"] > 0.4)
    _, smaller, zoom = sized_prediction(_disc_predict(1.0), image, post, target=15.0, sharpen=True)
    assert zoom < REFINE_MIN_ZOOM and np.all(np.bincount(smaller.ravel())[1:] < 0.9 * full_area)


def test_shrinking_stops_at_16_pixels_with_one_factor_for_both_axes():
    from napari_nucleiseg.inference.sizing import MIN_CHANGE, prediction_zoom, shrunk_shape

    for shape, diameter in [((96, 96), 1e6), ((20, 384), 60.0), ((17, 4000), 500.0)]:
        zoom = prediction_zoom(diameter, 19.5, shape)
        small = shrunk_shape(shape, zoom)
        assert min(small) == 16 or zoom == 1.0
        if zoom < 1.0:
            assert abs(small[0] / shape[0] - small[1] / shape[1]) < 0.02  # not squashed
    assert prediction_zoom(1e6, 19.5, (16, 400)) == 1.0  # nothing left to shrink
    assert prediction_zoom(1e6, 19.5, (17, 400)) == 1.0 and 16 / 17 > MIN_CHANGE
    image = np.zeros((96, 96), np.float32)
    assert segment(image, diameter=1e6).zoom == pytest.approx(16 / 96, abs=1e-4)  # rounded in settings
