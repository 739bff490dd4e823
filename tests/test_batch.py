"""The batch engine: bad files, resume, output folder rules, cancel, stacks, process pool, Dask."""

import hashlib
import json
import pickle

import numpy as np
import pandas as pd
import pytest
import tifffile

from napari_nucleiseg import batch
from napari_nucleiseg.batch import BatchOptions, run_batch, weights_sha256
from napari_nucleiseg.synthetic import synthetic_nuclei


def _write_images(folder, n, size=128, prefix="img"):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        image, _ = synthetic_nuclei((size, size), n_nuclei=8, seed=i)
        tifffile.imwrite(folder / f"{prefix}{i}.tif", image)


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def bad_folder(tmp_path):
    """Three good images, a truncated TIFF, an empty file and a text file named .tif."""
    src = tmp_path / "in"
    _write_images(src, 3)
    (src / "corrupt.tif").write_bytes((src / "img0.tif").read_bytes()[:200])
    (src / "empty.tif").write_bytes(b"")
    (src / "notes.tif").write_text("this is not an image\n")
    (src / "readme.txt").write_text("not an image suffix: never picked up\n")
    return src


def test_bad_files_are_recorded_and_the_run_goes_on(bad_folder, tmp_path):
    before = _digest(bad_folder)
    out = tmp_path / "out"
    res = run_batch(bad_folder, out)

    assert res.status == "completed"
    s = res.summary.set_index("file")
    assert list(s.index) == ["corrupt.tif", "empty.tif", "img0.tif", "img1.tif", "img2.tif", "notes.tif"]
    assert res.n_failed == 3 and res.n_ok == 3
    assert "empty" in s.loc["empty.tif", "error"]
    assert "not a TIFF" in s.loc["notes.tif", "error"]
    assert "cannot be decoded" in s.loc["corrupt.tif", "error"]
    for name in ("img0", "img1", "img2"):
        labels = tifffile.imread(out / f"{name}_labels.tif")
        assert labels.shape == (128, 128) and labels.max() == s.loc[f"{name}.tif", "nuclei"]
        assert tifffile.imread(out / f"{name}_probability.tif").dtype == np.float32
        assert tifffile.imread(out / f"{name}_uncertainty.tif").shape == (128, 128)
        table = pd.read_csv(out / f"{name}_nuclei.csv")
        assert len(table) == s.loc[f"{name}.tif", "nuclei"]
        if len(table):
            assert s.loc[f"{name}.tif", "mean_area"] == pytest.approx(table["area"].mean())
    assert not list(out.glob("corrupt*")) and not list(out.glob("notes*"))
    # the summary on disk matches, and the inputs were not touched
    disk = batch.read_summary(out)
    assert list(disk["status"]) == list(res.summary["status"])
    assert disk.loc[disk["file"] == "empty.tif", "error"].item() == s.loc["empty.tif", "error"]
    assert _digest(bad_folder) == before


def test_manifest_records_model_options_versions_and_times(bad_folder, tmp_path):
    from napari_nucleiseg import zoo

    res = run_batch(bad_folder, tmp_path / "out", BatchOptions(tta=False, min_size=12, uncertainty=False))
    man = json.loads(res.manifest_path.read_text())
    entry = zoo.get_entry("default")
    assert man["model"]["name"] == entry.name
    files = man["model"]["weight_files"]
    assert files[entry.weights.name] == hashlib.sha256(entry.weights.read_bytes()).hexdigest()
    assert set(files) == {p.name for p in entry.weight_files()}
    assert man["model"]["weights_sha256"] == weights_sha256(entry.name)
    assert man["options"]["min_size"] == 12 and man["options"]["uncertainty"] is False
    assert {"numpy", "torch", "napari-nucleiseg", "python"} <= set(man["versions"])
    assert man["status"] == "completed" and man["started"] <= man["finished"]
    assert (man["images"], man["ok"], man["failed"]) == (6, 3, 3)
    assert man["unsure"] == 0  # the synthetic fields' nuclei are clear
    assert not list((tmp_path / "out").glob("*_uncertainty.tif"))


def test_rerun_skips_finished_images_and_redoes_incomplete_ones(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 3)
    run_batch(src, out)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("img*")}
    (out / "img1_probability.tif").unlink()  # an output lost since: img1 is not complete

    res = run_batch(src, out)
    s = res.summary.set_index("file")
    assert list(s["from_previous_run"]) == [True, False, True]
    assert (s["status"] == "ok").all()
    for name in ("img0_labels.tif", "img2_labels.tif", "img0_nuclei.csv"):
        assert (out / name).stat().st_mtime_ns == mtimes[name]
    assert (out / "img1_probability.tif").exists()
    man = json.loads(res.manifest_path.read_text())
    assert len(man["previous_runs"]) == 1 and man["from_previous_runs"] == 2

    # other options give other results: nothing counts as finished
    res = run_batch(src, out, BatchOptions(threshold=0.35))  # the tuned default is another value
    assert not res.summary["from_previous_run"].any()
    # an input that changed is processed again
    image, _ = synthetic_nuclei((128, 128), n_nuclei=5, seed=42)
    tifffile.imwrite(src / "img2.tif", image)
    res = run_batch(src, out, BatchOptions(threshold=0.35))
    assert list(res.summary["from_previous_run"]) == [True, True, False]


def test_a_run_of_a_version_that_hashed_the_device_name_is_resumed(tmp_path, monkeypatch):
    from napari_nucleiseg.batch import fingerprint

    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 2)
    with monkeypatch.context() as m:
        m.setattr(fingerprint, "numeric_mode", lambda device: device)  # the fingerprint before 2026-12-07
        run_batch(src, out)
    assert run_batch(src, out).summary["from_previous_run"].all()


def test_resume_hashes_only_outputs_whose_time_changed(tmp_path, monkeypatch):
    import os

    from napari_nucleiseg.batch import resume

    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 2)
    run_batch(src, out)
    hashed = []
    real = resume.sha256_of
    monkeypatch.setattr(resume, "sha256_of", lambda p: hashed.append(os.path.basename(p)) or real(p))
    assert run_batch(src, out).summary["from_previous_run"].all() and hashed == []
    # the same bytes with a new time (a copied folder) are checked and reused
    labels = out / "img0_labels.tif"
    os.utime(labels, ns=(labels.stat().st_atime_ns, labels.stat().st_mtime_ns + 10**9))
    assert run_batch(src, out).summary["from_previous_run"].all() and hashed == ["img0_labels.tif"]
    # other bytes of the same size are found
    data = bytearray(labels.read_bytes())
    data[-1] ^= 0xFF
    labels.write_bytes(bytes(data))
    assert list(run_batch(src, out).summary["from_previous_run"]) == [False, True]


def test_output_folder_may_not_be_the_input_folder_unless_forced(tmp_path):
    from napari_nucleiseg.errors import NucleisegError

    src = tmp_path / "in"
    _write_images(src, 2)
    with pytest.raises(NucleisegError, match="input folder"):
        run_batch(src, src)
    res = run_batch(src, src, force=True)
    assert res.n_ok == 2 and (src / "img0_labels.tif").exists()
    # our own outputs are never taken as inputs on the next run
    res = run_batch(src, src, force=True)
    assert list(res.summary["file"]) == ["img0.tif", "img1.tif"]
    assert res.summary["from_previous_run"].all()


def test_fatal_errors(tmp_path):
    from napari_nucleiseg.errors import NucleisegError

    with pytest.raises(NucleisegError, match="does not exist"):
        run_batch(tmp_path / "missing", tmp_path / "out")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(NucleisegError, match="no image files"):
        run_batch(tmp_path / "empty_dir", tmp_path / "out")
    _write_images(tmp_path / "in", 1)
    with pytest.raises(NucleisegError, match="unknown model"):
        run_batch(tmp_path / "in", tmp_path / "out", BatchOptions(model="no-such-model"))


def test_cancel_keeps_finished_images_and_the_next_run_completes(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 4)
    seen = []
    res = run_batch(src, out, progress=seen.append, cancel=lambda: len(seen) >= 2)
    assert res.status == "cancelled"
    assert list(res.summary["status"]) == ["ok", "ok", "not processed", "not processed"]
    assert [ev.done for ev in seen] == [1, 2] and seen[-1].total == 4
    assert seen[-1].eta is not None and seen[-1].eta >= 0
    assert json.loads(res.manifest_path.read_text())["status"] == "cancelled"

    res = run_batch(src, out)
    assert res.status == "completed"
    assert list(res.summary["from_previous_run"]) == [True, True, False, False]


def test_recursive_mirrors_subfolders_and_separates_same_stems(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 1, prefix="a")
    _write_images(src / "plate2", 1, prefix="a")
    image, _ = synthetic_nuclei((96, 96), n_nuclei=4, seed=3)
    import imageio.v3 as iio

    iio.imwrite(src / "a0.png", (image / image.max() * 255).astype(np.uint8))
    (src / ".hidden.tif").write_bytes(b"")

    assert [p.name for p in batch.find_images(src)] == ["a0.png", "a0.tif"]
    res = run_batch(src, out, recursive=True, pattern="a*")
    assert list(res.summary["file"]) == ["a0.png", "a0.tif", "plate2/a0.tif"]
    assert res.n_ok == 3
    for labels in res.summary["labels"]:
        assert (out / labels).is_file()
    assert (out / "a0_png_labels.tif").exists() and (out / "a0_tif_labels.tif").exists()
    assert (out / "plate2" / "a0_labels.tif").exists()


def test_stacks_are_segmented_plane_by_plane_and_bad_dimensions_fail(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    stack = np.stack([synthetic_nuclei((96, 96), n_nuclei=5, seed=s)[0] for s in range(3)])
    tifffile.imwrite(src / "stack.tif", stack, photometric="minisblack")
    tifffile.imwrite(src / "tiny.tif", np.ones((4, 4), np.uint8))
    tifffile.imwrite(src / "twochannel.tif", np.ones((64, 64, 2), np.uint8))
    res = run_batch(src, out)
    s = res.summary.set_index("file")
    assert s.loc["stack.tif", "status"] == "ok"
    labels = tifffile.imread(out / "stack_labels.tif")
    assert labels.shape == (3, 96, 96)
    table = pd.read_csv(out / "stack_nuclei.csv")
    assert set(table["plane"]) <= {0, 1, 2} and len(table) == s.loc["stack.tif", "nuclei"]
    assert sorted(table["label"]) == sorted(np.unique(labels[labels > 0]))  # unique across planes
    assert "too small" in s.loc["tiny.tif", "error"]
    assert s.loc["twochannel.tif", "status"] == "error" and s.loc["twochannel.tif", "error"]
    # what segment() found and did, per image (a failed image has none)
    assert s.loc["stack.tif", "image_kind"] == "fluorescence" and s.loc["stack.tif", "evened"] == 0.0
    assert s.loc["stack.tif", "zoom"] > 0 and s.loc["stack.tif", "smoothing"] >= 0
    assert pd.isna(s.loc["tiny.tif", "zoom"])
    on_disk = pd.read_csv(out / "summary.csv").set_index("file")
    assert on_disk.loc["stack.tif", "image_kind"] == "fluorescence"


def test_per_image_function_is_picklable_and_never_raises_for_bad_images(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 1)
    (src / "bad.tif").write_text("x")
    tasks = batch.plan_tasks(src, out, BatchOptions())
    pickle.loads(pickle.dumps((batch.process_image, tasks, BatchOptions())))
    rows = [batch.process_image(t, BatchOptions()) for t in tasks]
    assert [r["status"] for r in rows] == ["error", "ok"]
    assert batch.finished_row(tasks[0]) is None and batch.finished_row(tasks[1])["status"] == "ok"


def test_a_leftover_partial_file_is_removed(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 1)
    out.mkdir()
    (out / ".img0_labels.tif.abc123.part").write_bytes(b"half")
    run_batch(src, out)
    assert not list(out.glob(".*.part"))


def _labels(folder):
    return {p.name: tifffile.imread(p) for p in sorted(folder.glob("*_labels.tif"))}


def test_process_pool_gives_the_same_labels_as_one_process(tmp_path):
    src = tmp_path / "in"
    _write_images(src, 3)
    (src / "bad.tif").write_bytes(b"")
    local = run_batch(src, tmp_path / "local")
    pooled = run_batch(src, tmp_path / "pool", workers=2, threads_per_worker=1)
    assert list(pooled.summary["status"]) == list(local.summary["status"])
    a, b = _labels(tmp_path / "local"), _labels(tmp_path / "pool")
    assert a.keys() == b.keys() and len(a) == 3
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert json.loads(pooled.manifest_path.read_text())["execution"]["workers"] == 2


def test_dask_cluster_gives_the_same_labels_as_a_local_run(tmp_path):
    import distributed
    src = tmp_path / "in"
    _write_images(src, 3)
    (src / "notes.tif").write_text("x")
    local = run_batch(src, tmp_path / "local")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        remote = run_batch(src, tmp_path / "dask", client=client)
        assert "dask_scheduler" in json.loads(remote.manifest_path.read_text())["execution"]
        # the command line connects to the scheduler by its address
        from napari_nucleiseg.cli import main

        assert main(["batch", str(src), str(tmp_path / "cli"), "-q", "--scheduler", cluster.scheduler_address]) == 0
    cli_run = json.loads((tmp_path / "cli" / batch.MANIFEST_NAME).read_text())
    assert cli_run["execution"]["dask_scheduler"] == cluster.scheduler_address and cli_run["ok"] == 3
    assert list(remote.summary["status"]) == ["ok", "ok", "ok", "error"]
    assert list(remote.summary["nuclei"]) == list(local.summary["nuclei"])
    a, b, c = _labels(tmp_path / "local"), _labels(tmp_path / "dask"), _labels(tmp_path / "cli")
    assert a.keys() == b.keys() == c.keys() and len(a) == 3
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        np.testing.assert_array_equal(a[name], c[name])


def test_the_summary_on_disk_is_kept_up_to_date_during_a_long_run(tmp_path, monkeypatch):
    monkeypatch.setattr(batch.run, "_SUMMARY_EVERY_S", -1.0)  # rewrite after every image
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 3)
    on_disk = []
    run_batch(src, out, progress=lambda ev: on_disk.append(
        list(batch.read_summary(out)["status"]) if ev.done == 2 else None))
    assert on_disk[1] == ["ok", "not processed", "not processed"]


def test_model_defaults_spelled_out_resume_a_run_that_left_them_unset(tmp_path):
    from napari_nucleiseg import zoo

    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 2)
    run_batch(src, out, BatchOptions())
    post = zoo.get_entry("default").postprocess()
    res = run_batch(src, out, BatchOptions(model=zoo.get_entry("default").name, **post))
    assert res.summary["from_previous_run"].all()
    man = json.loads(res.manifest_path.read_text())
    assert man["options"]["threshold"] == post["threshold"] and man["options"]["model"] != "default"


def test_auto_device_resumes_a_run_on_the_device_it_resolved_to(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 2)
    run_batch(src, out, BatchOptions(device="auto"))
    assert run_batch(src, out, BatchOptions(device="cpu")).summary["from_previous_run"].all()
    assert batch.options_fingerprint(BatchOptions(device="cuda:1"), "w") == \
        batch.options_fingerprint(BatchOptions(device="cuda"), "w")


def test_threads_for_a_one_process_run_are_restored_afterwards(tmp_path):
    import torch

    src = tmp_path / "in"
    _write_images(src, 1)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = []
        run_batch(src, tmp_path / "out", threads_per_worker=1,
                  progress=lambda ev: seen.append(torch.get_num_threads()))
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_a_second_run_into_a_busy_folder_is_refused_and_a_dead_runs_lock_is_taken_over(tmp_path):
    import subprocess
    import sys

    from napari_nucleiseg.errors import FolderInUseError

    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 2, size=96)
    lock = out / batch.STATE_DIR / batch.LOCK_NAME
    holder = ("import sys, time\nfrom napari_nucleiseg.batch.lock import FolderLock\n"
              f"held = FolderLock({str(lock)!r})\nheld.acquire()\nprint('held', flush=True)\ntime.sleep(60)\n")
    other = subprocess.Popen([sys.executable, "-c", holder], stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "held"  # a live run holds the folder
        with pytest.raises(FolderInUseError, match=f"{out.name} is in use by another batch run .process {other.pid}"):
            run_batch(src, out)
        assert not list(out.glob("*_labels.tif")) and not (out / batch.SUMMARY_NAME).exists()
    finally:
        other.kill()
        other.wait()
    assert lock.exists()  # a killed run leaves its lock file; the system has released the lock itself
    res = run_batch(src, out)
    assert res.status == "completed" and res.n_ok == 2


def test_a_changed_model_card_setting_redoes_finished_images(tmp_path, monkeypatch):
    from napari_nucleiseg import zoo

    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 2)
    run_batch(src, out)
    assert run_batch(src, out).summary["from_previous_run"].all()
    # same weights and options, but the card's training nucleus size changed (e.g. an upgrade)
    monkeypatch.setattr(zoo.ModelEntry, "target_diameter", lambda self: 12.0)
    assert not run_batch(src, out).summary["from_previous_run"].any()


def test_a_lost_connection_while_the_scheduler_goes_is_not_an_image_failure():
    """A task's result can fail with a closed connection just before the client notices that its
    scheduler is gone: that image is then not processed, not failed (a plain error still fails it)."""
    from distributed.comm.core import CommClosedError

    from napari_nucleiseg.batch.executors import _scheduler_going

    class Client:
        def __init__(self, statuses):
            self.statuses = iter(statuses)

        @property
        def status(self):
            return next(self.statuses, "connecting")

    assert _scheduler_going(Client(["running", "running", "connecting"]), CommClosedError("gone"), grace=1.0)
    assert not _scheduler_going(Client(["running"] * 1000), CommClosedError("gone"), grace=0.2)
    assert not _scheduler_going(Client(["connecting"]), ValueError("bad pixels"), grace=1.0)


def test_hostile_file_names_reach_neither_a_spreadsheet_formula_nor_the_terminal_raw(tmp_path, capsys):
    from napari_nucleiseg.cli import main

    (tmp_path / "in").mkdir()
    names = ['=HYPERLINK("http:__x","click").tif', "two\n[9 of 9] fake.tif"]
    for name in names:
        tifffile.imwrite(tmp_path / "in" / name, synthetic_nuclei((96, 96), n_nuclei=4, seed=1)[0])
    assert main(["batch", str(tmp_path / "in"), str(tmp_path / "out"), "--threads", "1"]) == 0
    raw = pd.read_csv(tmp_path / "out" / "summary.csv", keep_default_na=False)
    assert "'" + names[0] in list(raw["file"])  # a spreadsheet shows it as text instead of running it
    assert sorted(batch.read_summary(tmp_path / "out")["file"]) == sorted(names)
    err = capsys.readouterr().err
    assert "two\\n[9 of 9] fake.tif: 4 nuclei" in err and "\n[9 of 9] fake.tif" not in err  # no forged line


def test_summary_text_cells_come_back_as_written():
    from napari_nucleiseg.batch.manifest import _as_written, _inert

    for name in ("=x.tif", "'=x.tif", "'-1.tif", "-1.tif", "'quoted.tif", "plain.tif", ""):
        assert _as_written(_inert(name)) == name
    assert _inert("=x.tif") == "'=x.tif" and _inert("plain.tif") == "plain.tif"


def _interrupted_after_first(finish: int):
    """A stand-in executor: ``finish`` images are written (as pool workers finish the images in hand
    after Ctrl-C), only the first is handed back, then the run is interrupted."""
    from napari_nucleiseg.batch.worker import process_image

    def executor(tasks, options, cancel, threads=None):
        done = [(task, process_image(task, options, cancel)) for task in tasks[:finish]]
        yield done[0]
        raise KeyboardInterrupt

    return executor


def test_images_finished_after_an_interrupt_are_recorded_as_done(tmp_path, monkeypatch):
    import importlib

    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 3)
    monkeypatch.setattr(importlib.import_module("napari_nucleiseg.batch.run"), "run_local",
                        _interrupted_after_first(2))
    with pytest.raises(KeyboardInterrupt):
        run_batch(src, out)
    summary = pd.read_csv(out / batch.SUMMARY_NAME)
    assert list(summary["status"]) == ["ok", "ok", "not processed"]
    assert not summary["from_previous_run"].any()
    assert json.loads((out / batch.MANIFEST_NAME).read_text())["status"] == "interrupted"


def test_a_redo_interrupted_does_not_count_the_earlier_runs_images(tmp_path, monkeypatch):
    import importlib

    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 3)
    assert run_batch(src, out).status == "completed"
    monkeypatch.setattr(importlib.import_module("napari_nucleiseg.batch.run"), "run_local",
                        _interrupted_after_first(1))
    with pytest.raises(KeyboardInterrupt):
        run_batch(src, out, redo=True)
    summary = pd.read_csv(out / batch.SUMMARY_NAME)
    assert list(summary["status"]) == ["ok", "not processed", "not processed"]


def test_results_of_an_older_file_go_when_the_new_one_fails_and_a_failed_redo_keeps_current_ones(tmp_path, monkeypatch):
    src, out = tmp_path / "in", tmp_path / "out"
    _write_images(src, 2)
    run_batch(src, out)
    earlier = sorted(p.name for p in out.glob("img1_*"))
    assert "img1_labels.tif" in earlier and (out / ".nucleiseg_batch" / "img1.json").exists()

    (src / "img1.tif").write_text("replaced by a file that is not an image\n")
    res = run_batch(src, out)
    s = res.summary.set_index("file")
    assert s.loc["img0.tif", "from_previous_run"] and s.loc["img1.tif", "status"] == "error"
    assert batch.run.STALE_REMOVED in s.loc["img1.tif", "error"]
    assert not list(out.glob("img1_*")) and not (out / ".nucleiseg_batch" / "img1.json").exists()
    assert (out / "img0_labels.tif").exists()

    # the same file and options, redone, failing for a reason of its own: its results still describe it
    def fails(*args, **kwargs):
        raise RuntimeError("a passing failure")

    monkeypatch.setattr(batch.worker, "segment_any", fails)
    res = run_batch(src, out, redo=True)
    s = res.summary.set_index("file")
    assert s.loc["img0.tif", "error"] == "RuntimeError: a passing failure"
    assert (out / "img0_labels.tif").exists() and (out / ".nucleiseg_batch" / "img0.json").exists()


def test_withdrawing_stale_results_removes_an_out_of_core_folder_and_never_leaves_the_output_folder(tmp_path):
    from napari_nucleiseg.batch.plan import ImageTask
    from napari_nucleiseg.batch.resume import withdraw_stale

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    (out / ".nucleiseg_batch").mkdir(parents=True)
    (src / "big.tif").write_bytes(b"new version")
    (out / "big_outofcore" / "labels.zarr").mkdir(parents=True)
    (out / "big_outofcore" / "nuclei.csv").write_text("label\n")
    (tmp_path / "outside.txt").write_text("not ours\n")
    marker = out / ".nucleiseg_batch" / "big.json"
    marker.write_text(json.dumps({"fingerprint": "old", "source": {"size": 1, "mtime_ns": 1},
                                  "outputs": {"big_outofcore/nuclei.csv": {}, "../outside.txt": {}}}))
    task = ImageTask(str(src / "big.tif"), "big.tif", "big", str(out / "big"), str(marker), "new", "")
    assert withdraw_stale(task)
    assert not (out / "big_outofcore").exists() and not marker.exists()
    assert (tmp_path / "outside.txt").exists()
    assert not withdraw_stale(task)  # nothing left to withdraw


def test_results_are_kept_when_the_input_cannot_be_reached_and_nothing_proves_them_stale(tmp_path):
    from napari_nucleiseg.batch.plan import ImageTask
    from napari_nucleiseg.batch.resume import withdraw_stale

    out = tmp_path / "out"
    (out / ".nucleiseg_batch").mkdir(parents=True)
    (out / "a_labels.tif").write_bytes(b"result")
    marker = out / ".nucleiseg_batch" / "a.json"
    marker.write_text(json.dumps({"fingerprint": "same", "source": {"size": 1, "mtime_ns": 1},
                                  "outputs": {"a_labels.tif": {}}}))
    gone = ImageTask(str(tmp_path / "share" / "a.tif"), "a.tif", "a", str(out / "a"), str(marker), "same", "")
    assert not withdraw_stale(gone)  # a share that dropped out: the results may still describe the image
    assert (out / "a_labels.tif").exists() and marker.exists()
    (tmp_path / "share").mkdir()
    (tmp_path / "share" / "a.tif").write_bytes(b"x")  # the same size and time as marked: the same file
    import os

    os.utime(tmp_path / "share" / "a.tif", ns=(1, 1))
    other = ImageTask(gone.source, "a.tif", "a", str(out / "a"), str(marker), "other options", "")
    assert not withdraw_stale(other)  # other options, same file: kept (a failure may pass)
    os.utime(tmp_path / "share" / "a.tif", ns=(2, 2))  # the file changed since
    assert withdraw_stale(other)
    assert not (out / "a_labels.tif").exists() and not marker.exists()
