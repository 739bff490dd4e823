"""Fault cases of batch runs: disks, resume, outputs as inputs, the folder lock, pool workers, Dask."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
from fault_helpers import case, cli, failing_writer, files_in, one_line, patched, python, short, user_dir, write_images


def _summary(out) -> list[str]:
    return list(pd.read_csv(out / "summary.csv")["status"])


@case("batch, disk full at the 2nd image (ENOSPC)", "stops early: exit 1, one line, summary.csv and "
      "manifest written, later images not processed")
def batch_disk_full(tmp):
    from napari_nucleiseg.io import results

    write_images(tmp / "in", 5)
    with patched(results, "tiff_writer", failing_writer(errno.ENOSPC, after=3)):
        rc, _, err = cli("batch", tmp / "in", tmp / "out", "-q")
    status = _summary(tmp / "out")
    manifest = json.loads((tmp / "out" / "run_manifest.json").read_text())
    ok = (rc == 1 and status == ["ok", "error", "not processed", "not processed", "not processed"]
          and manifest["status"] == "stopped" and "No space left" in err and "Traceback" not in err)
    return f"exit {rc}, statuses {status}, manifest {manifest['status']}: {short(err.splitlines()[-1], 70)}", ok


@case("batch with truncated user weights", "stops at the first image: exit 1, one line naming the file")
def batch_bad_weights(tmp):
    with user_dir(tmp / "user") as models:
        models.mkdir(parents=True)
        (models / "cut.json").write_text(json.dumps({"name": "cut", "architecture": "unet"}))
        (models / "cut.pt").write_bytes(b"PK\x03\x04 truncated")
        write_images(tmp / "in", 3)
        rc, _, err = cli("batch", tmp / "in", tmp / "out", "--model", "cut", "-q")
    status = _summary(tmp / "out")
    ok = rc == 1 and "cut.pt" in err and status.count("not processed") == 2 and "Traceback" not in err
    return f"exit {rc}, statuses {status}: {short(err.splitlines()[-1], 80)}", ok


@case("resume after a same-size corruption of a labels TIFF", "the corrupted image is segmented again")
def corrupt_output(tmp):
    write_images(tmp / "in", 2)
    cli("batch", tmp / "in", tmp / "out", "-q")
    path = tmp / "out" / "img1_labels.tif"
    good = path.read_bytes()
    bad = bytearray(good)
    bad[-200] ^= 0xFF
    path.write_bytes(bytes(bad))
    rc, out, _ = cli("batch", tmp / "in", tmp / "out", "-q")
    redone = pd.read_csv(tmp / "out" / "summary.csv").set_index("file")["from_previous_run"]
    ok = rc == 0 and not redone["img1.tif"] and redone["img0.tif"] and path.read_bytes() == good
    return f"from previous run: { {k: bool(v) for k, v in redone.items()} }, restored: {path.read_bytes() == good}", ok


@case("resume with --no-probability", "the old probability files are removed")
def stale_optional(tmp):
    write_images(tmp / "in", 2)
    cli("batch", tmp / "in", tmp / "out", "-q")
    rc, _, _ = cli("batch", tmp / "in", tmp / "out", "-q", "--no-probability")
    left = [f for f in files_in(tmp / "out") if f.endswith("_probability.tif")]
    return f"exit {rc}, probability files left: {left}", rc == 0 and not left


@case("an image replaced by a broken file, then the batch run again",
      "its error row, and its results of the old file removed")
def stale_after_failure(tmp):
    write_images(tmp / "in", 2)
    cli("batch", tmp / "in", tmp / "out", "-q")
    (tmp / "in" / "img1.tif").write_text("not an image any more\n")
    rc, _, _ = cli("batch", tmp / "in", tmp / "out", "-q")
    status = pd.read_csv(tmp / "out" / "summary.csv").set_index("file")["status"].to_dict()
    left = [f for f in files_in(tmp / "out") if f.startswith("img1_")]
    return f"exit {rc}, statuses {status}, img1 files left: {left}", status == {"img0.tif": "ok", "img1.tif": "error"} \
        and not left


@case("--out inside the input folder, recursive, then a second output sub-folder",
      "only the 2 real images are inputs in both runs")
def outputs_as_inputs(tmp):
    src = tmp / "in"
    write_images(src, 2)
    cli("batch", src, src / "res1", "-r", "-q")
    rc, out, _ = cli("batch", src, src / "res2", "-r", "-q")
    files = list(pd.read_csv(src / "res2" / "summary.csv")["file"])
    return f"exit {rc}, inputs of the second run: {files}", rc == 0 and files == ["img0.tif", "img1.tif"]


_RACER = """
import sys, time
from napari_nucleiseg.batch.lock import FolderLock
from napari_nucleiseg.errors import FolderInUseError
folder, trials, me = sys.argv[1], int(sys.argv[2]), sys.argv[3]
import pathlib
root = pathlib.Path(folder)
(root / f"ready-{me}").touch()
for t in range(trials):
    while not (root / f"go-{t}").exists():
        time.sleep(0.002)
    lock = FolderLock(root / f"lock-{t}")
    try:
        lock.acquire()
    except FolderInUseError:
        continue
    start = time.monotonic()
    time.sleep(0.05)
    end = time.monotonic()
    lock.release()
    with open(root / f"held-{me}", "a") as f:
        f.write(f"{t} {start} {end}\\n")
"""


@case("folder lock: 3 processes race for it, 20 times", "never two holders at once", ci=False)
def lock_race(tmp):
    trials, procs = 20, []
    for me in range(3):
        procs.append(subprocess.Popen([sys.executable, "-c", _RACER, str(tmp), str(trials), str(me)]))
    while len(list(tmp.glob("ready-*"))) < 3:
        time.sleep(0.05)
    for t in range(trials):
        (tmp / f"go-{t}").touch()
        time.sleep(0.15)
    for p in procs:
        p.wait(60)
    held: dict[int, list] = {}
    for f in tmp.glob("held-*"):
        for line in f.read_text().split("\n"):
            if line:
                t, a, b = line.split()
                held.setdefault(int(t), []).append((float(a), float(b)))
    overlaps = sum(1 for iv in held.values() for i, x in enumerate(iv) for y in iv[i + 1:]
                   if x[0] < y[1] and y[0] < x[1])
    return f"{trials} trials, held {sum(map(len, held.values()))} times, overlapping holds: {overlaps}", \
        overlaps == 0 and len(held) == trials


def killing_work(task, options, cancel=None):
    """``process_image``, except that the image named ``poison`` kills its worker process after
    leaving a temporary file, like an out-of-memory kill during a write."""
    from pathlib import Path

    from napari_nucleiseg.batch import process_image

    if "poison" in task.source:
        stem = Path(task.out_stem)
        (stem.parent / f".{stem.name}_labels.tif.x1y2.part").write_bytes(b"half")
        time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)
    return process_image(task, options, cancel)


@case("process pool: a worker is killed while it segments one image", "only that image fails; the others, "
      "in flight with it, are segmented; no .part files left")
def dead_worker(tmp):
    from napari_nucleiseg.batch import executors, run_batch
    from napari_nucleiseg.batch import run as run_module

    write_images(tmp / "in", 4)
    write_images(tmp / "in", 1, prefix="a-poison")  # sorted first: in flight with three others
    real = executors.run_pool

    def pool(*args, **kwargs):
        return real(*args, work=killing_work, **kwargs)

    with patched(run_module, "run_pool", pool):
        res = run_batch(tmp / "in", tmp / "out", workers=2, threads_per_worker=1)
    status = dict(zip(res.summary["file"], res.summary["status"]))
    parts = [f for f in files_in(tmp / "out") if f.endswith(".part")]
    error = res.summary.set_index("file").loc["a-poison0.tif", "error"]
    ok = status == {"a-poison0.tif": "error", "img0.tif": "ok", "img1.tif": "ok", "img2.tif": "ok",
                    "img3.tif": "ok"} and not parts and "worker process died" in error and "__main__" in error
    return f"statuses {status}, .part files {parts}", ok


@case("Dask run started from a relative input path", "task paths are absolute; the run completes")
def dask_relative(tmp):
    import distributed

    from napari_nucleiseg.batch import BatchOptions, plan_tasks, run_batch

    write_images(tmp / "in", 2)
    here = os.getcwd()
    os.chdir(tmp)
    try:
        absolute = all(os.path.isabs(p) for t in plan_tasks("in", "out", BatchOptions())
                       for p in (t.source, t.out_stem, t.marker))
        with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                      dashboard_address=None) as cluster, distributed.Client(cluster) as client:
            res = run_batch("in", "out", client=client)
    finally:
        os.chdir(here)
    return f"task paths absolute: {absolute}; status {res.status}, {res.n_ok} ok", \
        absolute and res.status == "completed" and res.n_ok == 2


_DASK_WORKER = "from distributed.cli.dask_worker import main; main()"
_DASK_SCHEDULER = "from distributed.cli.dask_scheduler import main; main()"


def _scheduler_address(path, timeout: float = 120.0) -> str:
    """The address a starting scheduler writes to ``path``, once the file is whole (it is created
    before it is written: on a loaded machine it was read empty)."""
    end = time.time() + timeout
    while True:
        try:
            return json.loads(path.read_text())["address"]
        except (OSError, ValueError, KeyError):
            if time.time() > end:
                raise
            time.sleep(0.1)


@case("Dask scheduler killed in the middle of a run", "the run ends within the timeout (10 s here, 30 s by "
      "default) with a clear line, summary.csv and manifest written, exit 1")
def dask_lost(tmp):
    write_images(tmp / "in", 12)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sched = subprocess.Popen([sys.executable, "-c", _DASK_SCHEDULER, "--port", "0", "--no-dashboard",
                              "--scheduler-file", str(tmp / "s.json")], env=env, stderr=subprocess.DEVNULL)
    worker = None
    try:
        address = _scheduler_address(tmp / "s.json")
        worker = subprocess.Popen([sys.executable, "-c", _DASK_WORKER, address, "--nthreads", "1", "--no-dashboard"],
                                  env=env, stderr=subprocess.DEVNULL)
        (tmp / "out").mkdir()
        killer = subprocess.Popen([sys.executable, "-c", _KILL_AFTER_FIRST, str(tmp / "out"), str(sched.pid)])
        run = subprocess.run([sys.executable, "-c", _CLI_LOST_AFTER_10, "batch", str(tmp / "in"), str(tmp / "out"),
                              "--scheduler", address, "-q"], capture_output=True, text=True, env=env, timeout=300)
        rc, err = run.returncode, run.stderr
        killer.wait(30)
        seconds = time.time() - float((tmp / "killed").read_text())
    finally:
        for p in (worker, sched):
            if p is not None and p.poll() is None:
                p.kill()
    manifest = json.loads((tmp / "out" / "run_manifest.json").read_text())
    status = _summary(tmp / "out")
    ok = (rc == 1 and "Dask scheduler" in err and manifest["status"] == "stopped" and "not processed" in status
          and seconds < 10.0 + 10 and one_line(err))
    last = err.splitlines()[-1] if err else ""
    return (f"exit {rc} {seconds:.0f} s after the kill (timeout 10 s), manifest {manifest['status']}, "
            f"{status.count('ok')} ok: ...{short(last[-90:], 95)}"), ok


# the command line in a process of its own (its whole stderr is what a user sees), the wait 10 s
_CLI_LOST_AFTER_10 = """
import sys
from napari_nucleiseg.batch import executors
executors.DASK_LOST_AFTER_S = 10.0
from napari_nucleiseg.cli import main
sys.exit(main(sys.argv[1:]))
"""

_KILL_AFTER_FIRST = """
import os, signal, sys, time, pathlib
out, pid = pathlib.Path(sys.argv[1]), int(sys.argv[2])
while not list((out / ".nucleiseg_batch").glob("img*.json")):
    time.sleep(0.05)
os.kill(pid, signal.SIGKILL)
(out.parent / "killed").write_text(str(time.time()))
"""


@case("two FolderLocks in one process, then one in another process", "the second and third are refused")
def lock_twice(tmp):
    from napari_nucleiseg.batch.lock import FolderLock
    from napari_nucleiseg.errors import FolderInUseError

    first = FolderLock(tmp / "run.lock")
    first.acquire()
    refused = []
    try:
        try:
            FolderLock(tmp / "run.lock").acquire()
        except FolderInUseError:
            refused.append("same process")
        code = ("from napari_nucleiseg.batch.lock import FolderLock\n"
                f"try:\n    FolderLock({str(tmp / 'run.lock')!r}).acquire()\nexcept Exception as e:\n    print(e)")
        other = python(code, timeout=120)
        if "in use by another batch run" in other.stdout:
            refused.append("other process")
    finally:
        first.release()
    return f"refused: {refused}", refused == ["same process", "other process"] and one_line(other.stdout)
