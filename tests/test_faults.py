"""Faults: the CI cases of ``benchmarks/fault_suite.py`` (each a careful user's mistake or a broken
machine, checked end to end), and the checks they rest on."""

import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fault_suite  # noqa: E402

from napari_nucleiseg.errors import ImageTooLargeError, InvalidImageError, OptionError  # noqa: E402
from napari_nucleiseg.options import SegmentOptions  # noqa: E402

CI_CASES = [c for c in fault_suite.CASES if c.ci]


@pytest.mark.parametrize("fault", CI_CASES, ids=[c.name for c in CI_CASES])
def test_fault_case(fault):
    row = fault_suite.run_case(fault)
    assert row["pass"], f"{fault.name}: expected {fault.expected}; observed {row['observed']}"


def test_the_suite_covers_every_kind_of_fault():
    names = " ".join(c.name for c in fault_suite.CASES).lower()
    for word in ("tile", "device", "channels-first", "float64", "fractional", "evaluate", "disk full",
                 "read-only", "umask", "60000", "pickle", "user-models", ".part", "corruption",
                 "no-probability", "broken file", "--out inside", "lock", "worker is killed", "relative", "scheduler"):
        assert word in names, word


@pytest.mark.parametrize("changes,word", [
    ({"tile": 64}, "overlap"), ({"tile": 16, "overlap": 0}, "tile"), ({"overlap": -1}, "overlap"),
    ({"tile": 100, "overlap": 51}, r"overlap 51: must be 0 to half the tile \(50 pixels\)"),
    ({"device": "gpu"}, "device"), ({"threshold": float("nan")}, "threshold"), ({"min_size": 2.5}, "min_size"),
    ({"border_threshold": -0.1}, "border_threshold"), ({"diameter": "big"}, "diameter"), ({"model": ""}, "model"),
])
def test_bad_options_are_refused_when_made(changes, word):
    with pytest.raises(OptionError, match=word):
        SegmentOptions(**changes)
    with pytest.raises(ValueError):  # also a ValueError, for callers that catch those
        SegmentOptions.build(None, **changes)


def test_good_options_pass():
    o = SegmentOptions(tile=32, overlap=0, device="cuda:1", threshold=1.0, min_size=0, diameter="off")
    assert o.tile == 32 and o.device == "cuda:1"
    import torch

    assert SegmentOptions(device=torch.device("cpu")).device == "cpu"  # torch users pass devices


def test_labels_that_are_not_whole_numbers_are_refused():
    from napari_nucleiseg.io.images import as_labels

    assert as_labels(np.array([[0.0, 2.0]])).dtype == np.int32
    for bad, word in ((np.array([[0.5, 1.0]]), "fractional"), (np.array([[np.nan, 1.0]]), "NaN"),
                      (np.array([[-1, 1]]), "values must be")):
        with pytest.raises(InvalidImageError, match=word):
            as_labels(bad, "pred.tif")


def test_wide_float_images_are_brought_into_float32_range():
    from napari_nucleiseg.inference.checks import within_float32

    img = np.array([[1e300, -2e300], [0.0, 1.0]])
    scaled, scale = within_float32(img)
    assert scale == pytest.approx(2e300, rel=0.01) and np.isfinite(scaled.astype(np.float32)).all()
    ones = np.ones((2, 2))
    same, one = within_float32(ones)
    assert one == 1.0 and same is ones
    tiny, scale = within_float32(np.full((2, 2), 1e-200))
    assert scale == 1e-200 and tiny.astype(np.float32).max() == 1.0



def test_one_wild_float64_pixel_leaves_the_segmentation_alone():
    from napari_nucleiseg import segment
    from napari_nucleiseg.synthetic import synthetic_nuclei

    img = synthetic_nuclei((128, 128), n_nuclei=10, seed=5)[0].astype(np.float64)
    clean = segment(img, device="cpu")
    wild = img.copy()
    wild[5, 5] = 1e300
    seg = segment(wild, device="cpu")
    assert clean.labels.max() > 0 and seg.labels.max() == clean.labels.max()


def test_memory_check_from_a_shape(monkeypatch):
    from napari_nucleiseg import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 8 * 10**9)
    memory.check_fits((4000, 4000), np.uint8)  # about 1.2 GB
    with pytest.raises(ImageTooLargeError, match="--out-of-core"):
        memory.check_fits((20000, 20000), np.uint16, "big.tif")
    assert memory.plane_layout((5, 100, 200)) == (5, 20000)
    assert memory.plane_layout((100, 200, 3)) == (1, 20000)
    assert memory.plane_layout((10, 100, 200, 3)) == (10, 20000)  # Z planes of colour, not Z x 3
    assert memory.segmentation_bytes((100, 100), np.uint8, loaded=True) == 100 * 100 * (
        memory.KEPT_BYTES_PER_PIXEL + memory.PEAK_BYTES_PER_PIXEL)
    assert memory.plane_layout((3, 100, 200)) == (3, 20000)  # a grey stack of three, not colour
    assert memory.plane_layout((100, 200, 3), colour_last=False) == (100, 600)


def test_memory_check_reads_a_tiff_stack_of_three_as_three_planes(tmp_path, monkeypatch):
    import tifffile

    from napari_nucleiseg import memory
    from napari_nucleiseg.io.images import read_image

    stack, colour = tmp_path / "stack.tif", tmp_path / "colour.tif"
    tifffile.imwrite(stack, np.zeros((3, 300, 300), np.uint8), photometric="minisblack")
    tifffile.imwrite(colour, np.zeros((3, 300, 300), np.uint8), photometric="rgb", planarconfig="separate")
    one_plane = memory.segmentation_bytes((300, 300, 3), np.uint8)
    monkeypatch.setattr(memory, "available_bytes", lambda: one_plane)
    assert read_image(colour, for_segmentation=True).shape == (300, 300, 3)
    with pytest.raises(ImageTooLargeError, match="stack.tif"):
        read_image(stack, for_segmentation=True)


def test_a_cgroup_v1_memory_limit_is_read(monkeypatch):
    from napari_nucleiseg import memory

    files = {"/sys/fs/cgroup/memory/memory.limit_in_bytes": 3 * 10**9,
             "/sys/fs/cgroup/memory/memory.usage_in_bytes": 10**9}
    monkeypatch.setattr(memory, "_read_int", files.get)
    monkeypatch.setattr(memory, "_meminfo_available", lambda: 64 * 10**9)
    assert memory.available_bytes() == 2 * 10**9


def test_a_failed_write_set_leaves_the_old_files_and_no_temporary_ones(tmp_path):
    from napari_nucleiseg.io.writers import write_set

    (tmp_path / "a.txt").write_text("old a")

    def fail(tmp):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        write_set([(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("new a")), (tmp_path / "b.txt", fail)])
    assert sorted(os.listdir(tmp_path)) == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old a"
    write_set([(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("new a"))])
    assert (tmp_path / "a.txt").read_text() == "new a"


def test_predict_refuses_tiles_no_larger_than_the_overlap():
    from napari_nucleiseg.inference.predict import tile_starts

    assert tile_starts(300, 128, 32) == [0, 96, 172]
    with pytest.raises(OptionError, match="overlap"):
        tile_starts(300, 64, 64)


def test_numpy_numbers_are_options_and_a_wrong_options_argument_is_one_type_error():
    from napari_nucleiseg import segment
    from napari_nucleiseg.options import SegmentOptions

    o = SegmentOptions(threshold=np.float32(0.5), min_size=np.int64(10), tile=np.int32(256), overlap=np.int64(32),
                       tta=np.bool_(False), diameter=np.float64(20.0))
    assert (o.threshold, o.min_size, o.tile, o.overlap, o.tta) == (0.5, 10, 256, 32, False)
    assert type(o.tile) is int and type(o.threshold) is float
    with pytest.raises(TypeError, match="options must be SegmentOptions, not str"):
        segment(np.zeros((64, 64), np.uint8), "unet16")
