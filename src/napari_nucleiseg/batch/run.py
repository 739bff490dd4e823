"""``run_batch``: the driver that plans, resumes, runs the images on an executor and records the run."""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..dask_client import dask_client
from ..device import resolve_device
from ..errors import Cancelled, NucleisegError, OptionError, OutputWriteError, StopsRun
from ..io.writers import atomic_write_text
from .executors import DASK_LOST_AFTER_S, run_dask, run_local, run_pool
from .fingerprint import weights_sha256
from .lock import FolderLock
from .manifest import finish_manifest, new_manifest, write_summary
from .options import ERROR, LOCK_NAME, MANIFEST_NAME, OK, PENDING, STATE_DIR, SUMMARY_NAME, BatchOptions
from .plan import check_folders, plan_tasks
from .resume import finished_since, remove_partial_files, split_finished, withdraw_stale
from .worker import STOP_KEY

_SUMMARY_EVERY_S = 30.0
#: Added to the error of an image whose results from an earlier run were removed (``resume.withdraw_stale``).
STALE_REMOVED = "its results from an earlier run, of another version of the file, were removed"

@dataclass
class BatchProgress:
    """What a progress callback receives after each image.

    Attributes
    ----------
    done, total : int
        Images finished (processed, failed or found finished by an earlier run) and in all.
    row : dict
        The summary row of the image just finished.
    elapsed : float
        Seconds since the run started.
    eta : float or None
        Estimated seconds left (None until one image has been processed in this run).
    """

    done: int
    total: int
    row: dict
    elapsed: float
    eta: float | None


@dataclass
class BatchResult:
    """Outcome of :func:`run_batch`.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per image (``SUMMARY_COLUMNS``).
    summary_path, manifest_path : Path
    status : str
        ``"completed"``, ``"cancelled"``, ``"interrupted"`` or ``"stopped"`` (an error no image
        would escape ended the run early: see ``error``).
    error : str
        Why a ``"stopped"`` run stopped (a full or read-only output folder, unloadable weights,
        a lost Dask scheduler); empty otherwise.
    unsure_below : float or None
        The model's cut of an image's mean nucleus confidence (``ModelEntry.unsure_below``).
    """

    summary: pd.DataFrame
    summary_path: Path
    manifest_path: Path
    status: str
    output_dir: Path = field(default=Path("."))
    error: str = ""
    unsure_below: float | None = None

    @property
    def n_ok(self) -> int:
        """Images segmented successfully (in this run or an earlier one)."""
        return int((self.summary["status"] == OK).sum())

    @property
    def n_failed(self) -> int:
        """Images that could not be segmented (see the ``error`` column)."""
        return int((self.summary["status"] == ERROR).sum())

    @property
    def n_skipped(self) -> int:
        """Images found finished by an earlier run and not processed again."""
        return int(self.summary["from_previous_run"].sum())

    @property
    def n_pending(self) -> int:
        """Images not processed because the run was cancelled or interrupted."""
        return int((self.summary["status"] == PENDING).sum())


def run_batch(
    input_dir,
    output_dir,
    options: BatchOptions | None = None,
    pattern: str = "*",
    recursive: bool = False,
    workers: int = 1,
    threads_per_worker: int | None = None,
    client=None,
    scheduler: str | None = None,
    force: bool = False,
    redo: bool = False,
    progress: Callable[[BatchProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> BatchResult:
    """Segment every image of a folder, resuming an earlier run into the same output folder.

    Parameters
    ----------
    input_dir, output_dir : str or Path
        Input images (never modified) and where the results go. They may not be the same
        folder unless ``force`` is True.
    options : BatchOptions, optional
        Model, segmentation and output options (defaults: the default model, all maps).
    pattern : str
        Glob pattern for the input files (only image suffixes are taken).
    recursive : bool
        Search sub-folders; outputs mirror the sub-folder layout.
    workers : int
        1: segment in this process. N > 1: a pool of N processes (spawn), the model loaded
        once per worker.
    threads_per_worker : int, optional
        torch threads per pool worker, default ``cpu_count // workers`` (at least 1); with one
        worker, torch's thread count in this process for the run (default: unchanged). One
        thread is much faster when other programs keep the cores busy.
    client : dask.distributed.Client, optional
        Run the per-image function as Dask tasks on this client (workers must see the same
        files at the same paths, and have the same model).
    scheduler : str, optional
        Address of a Dask scheduler (``tcp://host:8786``); a client is opened and closed here.
    force : bool
        Allow the output folder to be the input folder.
    redo : bool
        Process every image again, ignoring finished ones from earlier runs.
    progress : callable, optional
        Called with a :class:`BatchProgress` after each image.
    cancel : callable, optional
        Returns True to stop: no new image is started (in-process, the current one stops too);
        finished images are kept and the next run resumes.

    Returns
    -------
    BatchResult

    Raises
    ------
    NucleisegError
        For fatal problems found before any image (missing input folder, output = input, unknown
        model or device, no images, an unwritable output folder); problems with single images
        are recorded in the summary, and an error that every later image would share
        (``errors.StopsRun``) ends the run early with status ``"stopped"``.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    for name, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise OptionError(f"{name} must be a whole number of at least 1, not {value!r}")
    check_folders(input_dir, output_dir, force)
    entry, options = _resolved(options or BatchOptions())
    if client is None and not scheduler:
        resolve_device(options.device)
    sha = weights_sha256(entry)
    tasks = plan_tasks(input_dir, output_dir, options, pattern, recursive, model_sha256=sha, entry=entry)
    if not tasks:
        raise NucleisegError(f"no image files matching {pattern!r} in {input_dir}"
                             + ("" if recursive else " (use recursive to search sub-folders)"))
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputWriteError(output_dir, exc) from None
    # a second run would delete this run's partial files and interleave its summary
    lock = FolderLock(output_dir / STATE_DIR / LOCK_NAME, output_dir)
    with lock, dask_client(client, scheduler, timeout=DASK_LOST_AFTER_S) as dask:
        remove_partial_files(output_dir)
        workers = int(workers)
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
        execution = ({"dask_scheduler": dask.scheduler.address} if dask is not None
                     else {"workers": workers, "threads_per_worker": threads if workers > 1 else None})
        manifest_path = output_dir / MANIFEST_NAME
        manifest = new_manifest(input_dir, output_dir, pattern, recursive, entry, sha, options,
                                tasks[0].fingerprint, execution, manifest_path)
        _write_record(manifest_path, manifest, output_dir)
        rows, todo = split_finished(tasks, redo)
        status, error = "interrupted", ""
        started_ns = time.time_ns()
        unsure_below = entry.unsure_below()
        try:
            run = functools.partial(_executor, todo, options, cancel, dask, workers, threads, threads_per_worker)
            status, error = _drive(tasks, rows, run, output_dir / SUMMARY_NAME, progress)
        finally:
            remove_partial_files(output_dir)
            # pool workers finish the images in hand after Ctrl-C, unseen by the loop that stopped
            rows.update(finished_since(todo, rows, started_ns))
            try:
                summary = write_summary(output_dir / SUMMARY_NAME, tasks, rows)
            except OSError as exc:
                raise OutputWriteError(output_dir, exc) from None
            _write_record(manifest_path, {**finish_manifest(manifest, status, summary, unsure_below),
                                          "error": error or None}, output_dir)
        return BatchResult(summary, output_dir / SUMMARY_NAME, manifest_path, status, output_dir, error,
                           unsure_below)


def _write_record(manifest_path: Path, manifest: dict, output_dir: Path) -> None:
    try:
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1, default=str))
    except OSError as exc:
        raise OutputWriteError(output_dir, exc) from None


def _executor(todo, options, cancel, dask, workers: int, threads: int, threads_per_worker: int | None):
    """The executor for this run: Dask, a process pool, or this process."""
    if dask is not None:
        return run_dask(todo, options, cancel, dask)
    if workers > 1 and len(todo) > 1:
        return run_pool(todo, options, cancel, min(workers, len(todo)), threads)
    return run_local(todo, options, cancel, threads_per_worker)


def _resolved(options: BatchOptions):
    """The model's zoo entry (looked up once for the run), and the options with its concrete name
    and post-processing values spelt out, so that a run with the model's own values given (the
    widget) resumes a run that left them at None (the CLI)."""
    from .. import zoo

    try:
        entry = zoo.get_entry(options.model)
    except (KeyError, FileNotFoundError) as exc:
        raise NucleisegError(str(exc.args[0] if exc.args else exc)) from None
    return entry, dataclasses.replace(options.with_postprocess(entry.postprocess()), model=entry.name)


def _drive(tasks, rows: dict, executor, summary_path: Path, progress) -> tuple[str, str]:
    """Run the executor, collecting rows, reporting progress and refreshing the summary now and
    then; returns the status (``"completed"``, ``"cancelled"`` or ``"stopped"``) and, for a run
    that an ``errors.StopsRun`` error stopped, its message."""
    t0 = time.monotonic()
    processed = 0
    last_summary = time.monotonic()

    def report(row: dict) -> None:
        if progress is None:
            return
        elapsed = time.monotonic() - t0
        left = len(tasks) - len(rows)
        eta = elapsed / processed * left if processed else None
        progress(BatchProgress(len(rows), len(tasks), row, elapsed, eta))

    for task in tasks:
        if task.rel in rows:
            report(rows[task.rel])
    results = executor()
    # closing(): the pool / Dask futures are released even if a progress callback raises
    with contextlib.closing(results):
        try:
            for task, row in results:
                if row["status"] == ERROR and not row.get(STOP_KEY) and withdraw_stale(task):
                    row["error"] += f"; {STALE_REMOVED}"
                rows[task.rel] = row
                processed += 1
                report(row)
                if row.get(STOP_KEY):
                    return "stopped", f"{task.rel}: {row['error']}"
                if time.monotonic() - last_summary > _SUMMARY_EVERY_S:
                    write_summary(summary_path, tasks, rows)
                    last_summary = time.monotonic()
        except Cancelled:
            pass
        except StopsRun as exc:
            return "stopped", str(exc)
    return ("cancelled" if len(rows) < len(tasks) else "completed"), ""
