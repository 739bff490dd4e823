"""Out of core, bad pixels and bad options are refused with one line, as in memory, and a run that
failed before any block leaves nothing that blocks a retry."""

import numpy as np
import pytest

from napari_nucleiseg.errors import InvalidImageError, OptionError
from napari_nucleiseg.outofcore import segment_out_of_core
from napari_nucleiseg.outofcore.store import RUN_FILE
from napari_nucleiseg.synthetic import synthetic_mosaic


@pytest.fixture(scope="module")
def image():
    return synthetic_mosaic((200, 200), tile=100)[0]


@pytest.mark.parametrize("bad, message", [
    (lambda im: np.where(np.arange(im.size).reshape(im.shape) == 5, np.nan, im.astype(np.float32)), "NaN"),
    (lambda im: im.astype(np.float64) * 1e300, "beyond float32"),
    (lambda im: im > im.mean(), "pixel type bool"),
])
def test_bad_pixels_are_refused(image, tmp_path, bad, message):
    with pytest.raises(InvalidImageError, match=message):
        segment_out_of_core(bad(image), tmp_path / "out", device="cpu", block=128)


def test_a_retry_after_a_failed_plan_is_not_refused(image, tmp_path):
    broken = image.astype(np.float32)
    broken[3, 3] = np.inf
    with pytest.raises(InvalidImageError):
        segment_out_of_core(broken, tmp_path / "out", device="cpu", block=128)
    assert (tmp_path / "out" / RUN_FILE).exists()  # the failure is recorded ...
    broken[3, 3] = 0
    assert segment_out_of_core(broken, tmp_path / "out", device="cpu", block=128).nuclei > 0  # ... and replaced


@pytest.mark.parametrize("options", [{"block": 8}, {"block": 64, "halo": 500}, {"block": 64, "halo": -1},
                                     {"block": 64.5}])
def test_bad_blocks_are_refused_before_any_file(image, tmp_path, options):
    with pytest.raises(OptionError):
        segment_out_of_core(image, tmp_path / "out", device="cpu", **options)
    assert not (tmp_path / "out").exists()


def test_resume_with_numpy_numbers_and_a_memmap_source_sent_by_name(image, tmp_path):
    import pickle

    from napari_nucleiseg.outofcore import open_source

    with pytest.warns(UserWarning, match=r"^halo 32 px is less than the 64 px this image needs"):
        first = segment_out_of_core(image, tmp_path / "out", device="cpu", block=128, halo=np.int64(32),
                                    scale=(np.float32(0.5), np.float32(0.5)))
    again = segment_out_of_core(image, tmp_path / "out", device="cpu", block=128, halo=32, scale=(0.5, 0.5))
    assert again.nuclei == first.nuclei and again.blocks_run == 0  # resumed: nothing redone
    mm = np.lib.format.open_memmap(tmp_path / "big.npy", mode="w+", dtype=image.dtype, shape=image.shape)
    mm[:] = image
    mm.flush()
    source = open_source(np.load(tmp_path / "big.npy", mmap_mode="r"))
    assert len(pickle.dumps(source)) < 10_000 < image.nbytes  # its name, not its pixels
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(source)).read(slice(0, 50), slice(0, 60)),
                                  image[:50, :60])


def test_a_halo_too_small_is_one_warning_line_on_the_command_line(image, tmp_path):
    import subprocess
    import sys

    import tifffile

    tifffile.imwrite(tmp_path / "slide.tif", image)
    args = [sys.executable, "-m", "napari_nucleiseg", "segment", str(tmp_path / "slide.tif"), "--out-of-core",
            "--block", "128", "--device", "cpu"]
    small = subprocess.run([*args, "--halo", "8", "--out", str(tmp_path / "a")], capture_output=True, text=True)
    assert small.returncode == 0, small.stderr
    lines = [ln for ln in small.stderr.splitlines() if "halo" in ln]
    assert len(lines) == 1 and lines[0].startswith("nucleiseg: warning: halo 8 px is less than"), small.stderr
    auto = subprocess.run([*args, "--out", str(tmp_path / "b")], capture_output=True, text=True)
    assert auto.returncode == 0 and "warning" not in auto.stderr, auto.stderr


def test_an_in_memory_image_goes_to_worker_processes_by_file_name(image, tmp_path, monkeypatch):
    import pickle

    from napari_nucleiseg.outofcore import run as ooc_run
    from napari_nucleiseg.outofcore.source import SPILL_NAME

    sizes, spilled_seen = [], []

    def in_this_process(fn, argsets, on_done, **kwargs):  # what a pool would be sent, run here
        for args in argsets:
            sizes.append(len(pickle.dumps(args)))
            spilled_seen.append((tmp_path / "pool" / SPILL_NAME).exists())
            on_done(fn(*args))

    monkeypatch.setattr(ooc_run, "run_tasks", in_this_process)
    pooled = segment_out_of_core(image, tmp_path / "pool", device="cpu", block=128, workers=2, mode="processes")
    monkeypatch.undo()
    threads = segment_out_of_core(image, tmp_path / "threads", device="cpu", block=128)
    assert max(sizes) < 20_000 < image.nbytes and all(spilled_seen)
    assert not (tmp_path / "pool" / SPILL_NAME).exists()
    np.testing.assert_array_equal(pooled.labels()[:], threads.labels()[:])


def test_a_bright_field_image_gets_the_wider_halo_and_a_small_block_warns(image, tmp_path):
    from napari_nucleiseg.outofcore.plan import BRIGHTFIELD_MARGIN, NETWORK_MARGIN

    bright = (image.max() - image).astype(image.dtype)
    res = segment_out_of_core(bright, tmp_path / "bf", device="cpu", block=192)
    assert res.settings["image_kind"] == "brightfield" and res.settings["halo"] >= BRIGHTFIELD_MARGIN
    with pytest.warns(UserWarning, match=rf"^block 32 px is smaller than the halo this image needs \({NETWORK_MARGIN}"):
        segment_out_of_core(image, tmp_path / "small", device="cpu", block=32)


def test_a_pyramid_level_has_its_own_pixel_size(image, tmp_path):
    import pandas as pd
    import tifffile

    from napari_nucleiseg.options import SegmentOptions
    from napari_nucleiseg.outofcore.auto import segment_file

    path = tmp_path / "pyr.ome.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, subifds=1, metadata={"axes": "YX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        tif.write(image[::2, ::2], subfiletype=1)
    result, _ = segment_file(path, tmp_path / "pyr", SegmentOptions(device="cpu"), block=128, level=1)
    table = pd.read_csv(result.table_path)
    assert len(table) and np.allclose(table["area_physical"], table["area"] * 1.0)


def test_relative_paths_are_sent_to_workers_as_absolute_ones(image, tmp_path, monkeypatch):
    import pickle

    import tifffile

    from napari_nucleiseg.outofcore import run as ooc_run

    tifffile.imwrite(tmp_path / "img.tif", np.tile(image, (3, 3)))  # more blocks than the plan's samples
    monkeypatch.chdir(tmp_path)
    sent = []

    def in_this_process(fn, argsets, on_done, **kwargs):
        for args in argsets:
            sent.append(pickle.loads(pickle.dumps(args)))
            on_done(fn(*args))

    monkeypatch.setattr(ooc_run, "run_tasks", in_this_process)
    segment_out_of_core("img.tif", "out", device="cpu", block=128, workers=2, mode="processes")
    jobs = [args[0] for args in sent if hasattr(args[0], "source")]
    assert jobs and all(j.out == str(tmp_path / "out") and j.source._opener.path == str(tmp_path / "img.tif")
                        for j in jobs)
    assert all(args[0] == str(tmp_path / "out") for args in sent if isinstance(args[0], str))  # the joins


def test_an_error_that_stops_a_batch_keeps_its_kind_from_a_worker():
    import pickle

    from napari_nucleiseg.errors import NucleisegError, OutputWriteError, StopsRun
    from napari_nucleiseg.outofcore.execute import _call

    def full_disk(cancel=None):
        raise OutputWriteError("/out", OSError(28, "No space left on device"))

    def bad_block(cancel=None):
        raise NucleisegError("a bad block")

    for fn, kind in ((full_disk, StopsRun), (bad_block, NucleisegError)):
        with pytest.raises(NucleisegError) as caught:
            _call(fn, ())
        again = pickle.loads(pickle.dumps(caught.value))  # as it comes back from a process
        assert type(again) is kind and isinstance(again, NucleisegError)


def test_a_flipped_scale_gives_positive_sizes_as_in_memory(image, tmp_path):
    import pandas as pd

    res = segment_out_of_core(image, tmp_path / "flip", device="cpu", block=128, scale=(-0.5, 0.5))
    table = pd.read_csv(res.table_path)
    assert len(table) and np.allclose(table["area_physical"], table["area"] * 0.25)
