"""Segment a whole folder: resumable, atomic, in one process, a process pool or on a Dask cluster.

The unit of work is :func:`process_image`: a pure, picklable function that reads one image,
segments it, writes its outputs atomically and finally a *done marker*. The marker is what
makes a run resumable: an image counts as finished only when its marker exists, matches the
current options, model weights and input file, and every output it lists is present with
the recorded size. Everything else (an image whose outputs were half written when the run was
killed, an image that failed, an image whose input changed) is processed again.

Layout of the output folder (``stem`` is the input's path relative to the input folder,
without its suffix)::

    <stem>_labels.tif        instance labels (uint16, uint32 beyond 65535 nuclei)
    <stem>_probability.tif   nucleus probability (optional)
    <stem>_uncertainty.tif   per-pixel uncertainty (optional)
    <stem>_overlay.png       outlines over the image (optional)
    <stem>_nuclei.csv        one row per nucleus
    summary.csv              one row per image: file, status, nuclei, mean area, confidence, error
    run_manifest.json        model and weights hash, options, versions, start/end time
    .nucleiseg_batch/        done markers (one JSON per finished image)

Nothing here imports Qt or napari.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import platform
import sys
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd

from ..errors import NucleisegError
from .lock import FolderLock
from ..io.images import atomic_write_text, is_image_file

STATE_DIR = ".nucleiseg_batch"
LOCK_NAME = "run.lock"
SUMMARY_NAME = "summary.csv"
MANIFEST_NAME = "run_manifest.json"
OUTPUT_SUFFIXES = ("_labels.tif", "_probability.tif", "_uncertainty.tif", "_overlay.png", "_nuclei.csv")
SUMMARY_COLUMNS = ["file", "status", "nuclei", "mean_area", "mean_confidence", "error", "seconds",
                   "from_previous_run", "labels"]
#: Image statuses in the summary.
OK, ERROR, PENDING = "ok", "error", "not processed"
_SUMMARY_EVERY_S = 30.0
_VERSIONED_PACKAGES = ("napari-nucleiseg", "numpy", "scipy", "scikit-image", "torch", "tifffile",
                       "imageio", "pandas", "dask", "distributed")


@dataclass(frozen=True)
class BatchOptions:
    """Segmentation and output options for every image of a batch (see ``pipeline.segment``).

    Attributes
    ----------
    model : str
        Zoo model name (``"default"``: the shipped default).
    tta : bool
        Test-time augmentation.
    device : str
        ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"mps"``.
    threshold, border_threshold, min_size, min_mean_foreground, invert :
        Post-processing and contrast options; None uses the model's tuned values / detection.
    diameter : float, "auto" or None
        Typical nucleus diameter in pixels (``sizing``); None never rescales.
    tile, overlap : int
        Tiling; memory per image is bounded by the tile, not the image.
    probability, uncertainty, overlay : bool
        Which optional outputs to write (labels and the per-nucleus CSV are always written).
    """

    model: str = "default"
    tta: bool = False
    device: str = "auto"
    threshold: float | None = None
    border_threshold: float | None = None
    min_size: int | None = None
    min_mean_foreground: float | None = None
    invert: bool | None = None
    diameter: float | str | None = "auto"
    tile: int = 1024
    overlap: int = 64
    probability: bool = True
    uncertainty: bool = True
    overlay: bool = False

    def segment_kwargs(self) -> dict:
        """Keyword arguments for ``pipeline.segment``."""
        return {"model": self.model, "tta": self.tta, "device": self.device, "threshold": self.threshold,
                "border_threshold": self.border_threshold, "min_size": self.min_size,
                "min_mean_foreground": self.min_mean_foreground, "invert": self.invert,
                "diameter": self.diameter, "tile": self.tile, "overlap": self.overlap}


@dataclass(frozen=True)
class ImageTask:
    """One image of a batch: where it is, where its outputs go and what a finished marker must say.

    All fields are plain strings so that tasks travel to process-pool and Dask workers.
    """

    source: str
    rel: str
    stem: str
    out_stem: str
    marker: str
    fingerprint: str
    weights_sha256: str


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
        ``"completed"``, ``"cancelled"`` or ``"interrupted"``.
    """

    summary: pd.DataFrame
    summary_path: Path
    manifest_path: Path
    status: str
    output_dir: Path = field(default=Path("."))

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


# --------------------------------------------------------------------------------------------
# hashing and fingerprints


@functools.lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path) -> str:
    """SHA-256 of a file (cached per path, size and modification time)."""
    st = os.stat(path)
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def weights_sha256(model: str = "default") -> str:
    """SHA-256 of the weights a zoo model's results depend on.

    The weights file's own hash; for a model with specialists (``ModelEntry.weight_files``), the hash
    of the files' names and hashes, one per line.
    """
    from .. import zoo

    files = zoo.get_entry(model).weight_files()
    if len(files) == 1:
        return file_sha256(files[0])
    lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def options_fingerprint(options: BatchOptions, model_sha256: str, target_diameter: float | None = None) -> str:
    """Short hash of everything that changes an image's outputs: the options (``run_batch`` spells
    out the card's post-processing in them), the exact weights and the card's training nucleus
    size (``ModelEntry.target_diameter``); a finished image is only reused when all are unchanged."""
    blob = json.dumps({"options": dataclasses.asdict(options), "weights": model_sha256,
                       "target_diameter": target_diameter}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _source_stamp(path) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


# --------------------------------------------------------------------------------------------
# planning


def _is_our_output(path: Path, out_dir: Path) -> bool:
    """True for files this module wrote (when the output folder lies inside the input folder)."""
    try:
        path.relative_to(out_dir)
    except ValueError:
        return False
    return path.name.endswith(OUTPUT_SUFFIXES) or path.name in (SUMMARY_NAME, MANIFEST_NAME)


def find_images(input_dir, pattern: str = "*", recursive: bool = False, exclude_dir=None) -> list[Path]:
    """Image files of a folder, sorted by relative path.

    Parameters
    ----------
    input_dir : str or Path
    pattern : str
        Glob pattern (``"*.tif"``, ``"plate1_*"``); only files with an image suffix
        (``io.IMAGE_SUFFIXES``, any case) are kept, hidden files are skipped.
    recursive : bool
        Also search sub-folders.
    exclude_dir : str or Path, optional
        The output folder: our own output files inside it are never taken as inputs.

    Returns
    -------
    list of Path
    """
    root = Path(input_dir)
    out = Path(exclude_dir).resolve() if exclude_dir is not None else None
    found = root.rglob(pattern) if recursive else root.glob(pattern)
    files = []
    for p in found:
        rel_parts = p.relative_to(root).parts
        if any(part.startswith(".") for part in rel_parts) or not p.is_file() or not is_image_file(p):
            continue
        if out is not None and _is_our_output(p.resolve(), out):
            continue
        files.append(p)
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def _stems(files: list[Path], root: Path) -> list[str]:
    """Output stems (relative path without suffix); ``a.tif`` and ``a.png`` become ``a_tif``, ``a_png``."""
    stems = [p.relative_to(root).with_suffix("").as_posix() for p in files]
    counts: dict[str, int] = {}
    for s in stems:
        counts[s] = counts.get(s, 0) + 1
    return [s if counts[s] == 1 else f"{s}_{p.suffix.lstrip('.').lower()}" for s, p in zip(stems, files)]


def plan_tasks(input_dir, output_dir, options: BatchOptions, pattern: str = "*", recursive: bool = False,
               model_sha256: str | None = None) -> list[ImageTask]:
    """One :class:`ImageTask` per image found in ``input_dir``."""
    root, out = Path(input_dir), Path(output_dir)
    sha = model_sha256 if model_sha256 is not None else weights_sha256(options.model)
    from .. import zoo

    fp = options_fingerprint(options, sha, zoo.get_entry(options.model).target_diameter())
    files = find_images(root, pattern, recursive, exclude_dir=out)
    return [ImageTask(str(p), p.relative_to(root).as_posix(), stem, str(out / stem),
                      str(out / STATE_DIR / f"{stem}.json"), fp, sha)
            for p, stem in zip(files, _stems(files, root))]


def _check_folders(input_dir: Path, output_dir: Path, force: bool) -> None:
    if not input_dir.is_dir():
        raise NucleisegError(f"input folder {input_dir} does not exist or is not a folder")
    if output_dir.exists() and not output_dir.is_dir():
        raise NucleisegError(f"output {output_dir} exists and is not a folder")
    if input_dir.resolve() == output_dir.resolve() and not force:
        raise NucleisegError(
            f"the output folder is the input folder ({input_dir}); choose another output folder "
            "or insist with force=True (--force)")


# --------------------------------------------------------------------------------------------
# resume


def finished_row(task: ImageTask) -> dict | None:
    """The summary row stored by an earlier run if ``task`` is finished and complete, else None.

    Finished means: the done marker exists and is valid JSON, was written with the same options
    and model weights, for the same input file (size and modification time), and every output
    file it lists exists with the size it had when it was written.
    """
    try:
        marker = json.loads(Path(task.marker).read_text())
        if marker.get("fingerprint") != task.fingerprint or marker.get("source") != _source_stamp(task.source):
            return None
        for name, size in marker["outputs"].items():
            if os.path.getsize(os.path.join(os.path.dirname(task.out_stem), name)) != size:
                return None
        return {**marker["row"], "from_previous_run": True}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def remove_partial_files(output_dir) -> int:
    """Delete temporary ``.<name>.<random>.part`` files left by a killed run; returns how many."""
    n = 0
    for p in Path(output_dir).rglob(".*.part"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


# --------------------------------------------------------------------------------------------
# the per-image function


def _segment_array(image: np.ndarray, options: BatchOptions, cancel):
    """Segment a 2D image, or each plane of a stack (labels unique across planes, as the CLI does)."""
    from ..inference.pipeline import combine_planes, is_stack, segment, segment_stack

    if is_stack(image):
        return combine_planes(segment_stack(image, cancel=cancel, **options.segment_kwargs()))
    return segment(image, cancel=cancel, **options.segment_kwargs())


def _write_image_outputs(image, seg, out_stem: str, options: BatchOptions) -> list[Path]:
    """Write one image's outputs atomically; returns their paths."""
    from ..io.images import write_csv, write_png, write_tiff
    from ..io.overlay import overlay_png

    base = Path(out_stem)
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [Path(f"{base}_labels.tif")]
    labels = seg.labels
    write_tiff(paths[0], labels.astype(np.uint16 if labels.max() < 65536 else np.uint32))
    if options.probability:
        paths.append(Path(f"{base}_probability.tif"))
        write_tiff(paths[-1], seg.probability.astype(np.float32))
    if options.uncertainty:
        paths.append(Path(f"{base}_uncertainty.tif"))
        write_tiff(paths[-1], seg.uncertainty.astype(np.float32))
    if options.overlay:  # for a stack, the middle plane
        paths.append(Path(f"{base}_overlay.png"))
        z = labels.shape[0] // 2
        write_png(paths[-1], overlay_png(image, labels) if labels.ndim == 2 else overlay_png(image[z], labels[z]))
    paths.append(Path(f"{base}_nuclei.csv"))
    write_csv(paths[-1], seg.table)
    return paths


def _error_text(exc: BaseException) -> str:
    from ..errors import ImageReadError

    if isinstance(exc, ImageReadError):  # the summary row names the file already
        return exc.reason
    if isinstance(exc, NucleisegError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "out of memory (MemoryError); try a smaller tile size"
    return f"{type(exc).__name__}: {exc}"


def process_image(task: ImageTask, options: BatchOptions, cancel: Callable[[], bool] | None = None) -> dict:
    """Segment one image of a batch and write its outputs, then its done marker.

    Pure and picklable: it can run in this process, in a process-pool worker or as a Dask task
    (the model is loaded once per process and cached). Errors of the image (unreadable,
    empty, wrong dimensions, ...) are returned in the row, never raised.

    Parameters
    ----------
    task : ImageTask
    options : BatchOptions
    cancel : callable, optional
        Checked between tiles; ``predict.Cancelled`` is raised (and nothing is marked done).

    Returns
    -------
    dict
        The summary row: file, status (``"ok"``/``"error"``), nuclei, mean_area,
        mean_confidence, error, seconds, from_previous_run, labels.
    """
    from ..io.images import read_image
    from ..errors import Cancelled

    t0 = time.perf_counter()
    row = {"file": task.rel, "status": ERROR, "nuclei": 0, "mean_area": np.nan, "mean_confidence": np.nan,
           "error": "", "seconds": 0.0, "from_previous_run": False, "labels": ""}
    try:
        if task.weights_sha256 and weights_sha256(options.model) != task.weights_sha256:
            raise NucleisegError(f"the weights of model {options.model!r} on this worker differ from "
                                 "the ones the run was started with")
        stamp = _source_stamp(task.source)
        image = read_image(task.source)
        seg = _segment_array(image, options, cancel)
        table = seg.table
        paths = _write_image_outputs(image, seg, task.out_stem, options)
        row.update(status=OK, nuclei=int(len(table)),
                   mean_area=float(table["area"].mean()) if len(table) else np.nan,
                   mean_confidence=float(table["confidence"].mean()) if len(table) else np.nan,
                   labels=f"{task.stem}_labels.tif")
    except Cancelled:
        raise
    except Exception as exc:  # one bad image must never stop an overnight run
        row["error"] = _error_text(exc)
        row["seconds"] = round(time.perf_counter() - t0, 3)
        return row
    row["seconds"] = round(time.perf_counter() - t0, 3)
    marker = {"fingerprint": task.fingerprint, "source": stamp, "row": _jsonable(row),
              "outputs": {p.name: p.stat().st_size for p in paths},
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    atomic_write_text(task.marker, json.dumps(marker, indent=1))
    return row


def _jsonable(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}


# --------------------------------------------------------------------------------------------
# executors: each yields (task, row) as images finish


def _run_local(tasks, options, cancel, threads: int | None = None) -> Iterable[tuple[ImageTask, dict]]:
    """In this process; ``threads`` (if given) sets torch's thread count for the run only."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        for task in tasks:
            if cancel is not None and cancel():
                return
            yield task, process_image(task, options, cancel)
    finally:
        torch.set_num_threads(before)


def _init_worker(threads: int) -> None:
    """Process-pool initializer: limit torch threads (the pool shares the cores)."""
    import torch

    torch.set_num_threads(max(1, threads))


def _crash_row(task: ImageTask, exc: BaseException) -> dict:
    return {"file": task.rel, "status": ERROR, "nuclei": 0, "mean_area": np.nan, "mean_confidence": np.nan,
            "error": f"the worker process died while processing this image ({type(exc).__name__}; "
                     "out of memory?)", "seconds": 0.0, "from_previous_run": False, "labels": ""}


def _run_pool(tasks, options, cancel, workers: int, threads: int) -> Iterable[tuple[ImageTask, dict]]:
    """A spawn-context process pool; at most ``2 * workers`` images in flight, so Cancel is quick.

    If a worker dies (killed, out of memory), the images in flight are recorded as errors (a
    later run retries them) and a fresh pool carries on with the rest.
    """
    import multiprocessing as mp

    queue = deque(tasks)
    while queue:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads,))
        running: dict = {}
        try:
            while queue or running:
                while queue and len(running) < 2 * workers and not (cancel is not None and cancel()):
                    task = queue.popleft()
                    running[pool.submit(process_image, task, options)] = task
                if not running:
                    return
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                broken = None
                for fut in done:
                    task = running.pop(fut)
                    try:
                        row = fut.result()
                    except BrokenProcessPool as exc:
                        row, broken = _crash_row(task, exc), exc
                    yield task, row
                if broken is not None:
                    for task in list(running.values()):
                        yield task, _crash_row(task, broken)
                    running.clear()
                    break
                if cancel is not None and cancel():
                    queue.clear()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _run_dask(tasks, options, cancel, client) -> Iterable[tuple[ImageTask, dict]]:
    """Submit ``process_image`` as Dask tasks on an existing client (``2 * nthreads`` in flight)."""
    from distributed import as_completed

    queue = deque(tasks)
    window = max(2, 2 * sum(client.nthreads().values()))
    futures: dict = {}
    ac = as_completed()

    def submit(task):
        fut = client.submit(process_image, task, options, pure=False)
        futures[fut.key] = (fut, task)
        ac.add(fut)

    for _ in range(min(window, len(queue))):
        submit(queue.popleft())
    try:
        for fut in ac:
            _, task = futures.pop(fut.key)
            try:
                row = fut.result()
            except Exception as exc:  # a worker died, or the task could not run there
                row = {**_crash_row(task, exc), "error": f"Dask task failed: {_error_text(exc)}"}
            yield task, row
            if cancel is not None and cancel():
                return
            if queue:
                submit(queue.popleft())
    finally:
        if futures:
            client.cancel([f for f, _ in futures.values()])


# --------------------------------------------------------------------------------------------
# summary and manifest


def package_versions() -> dict:
    """Versions of Python and the packages that shape the results."""
    from importlib import metadata

    out = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _summary_frame(tasks: list[ImageTask], rows: dict[str, dict]) -> pd.DataFrame:
    blank = {"status": PENDING, "nuclei": 0, "mean_area": np.nan, "mean_confidence": np.nan, "error": "",
             "seconds": 0.0, "from_previous_run": False, "labels": ""}
    data = [rows.get(t.rel, {**blank, "file": t.rel}) for t in tasks]
    df = pd.DataFrame(data, columns=SUMMARY_COLUMNS)
    return df.astype({"nuclei": int, "from_previous_run": bool})


def _write_summary(path: Path, tasks, rows) -> pd.DataFrame:
    from ..io.images import write_csv

    df = _summary_frame(tasks, rows)
    write_csv(path, df)
    return df


def _now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# the driver


def _new_manifest(input_dir: Path, output_dir: Path, pattern: str, recursive: bool, entry, sha: str,
                  options: BatchOptions, fingerprint: str, execution: dict, manifest_path: Path) -> dict:
    """The run's manifest as it starts (status "running")."""
    from .. import zoo

    return {
        "tool": "napari-nucleiseg batch",
        "status": "running",
        "started": _now(),
        "finished": None,
        "input_dir": str(input_dir.resolve()),
        "output_dir": str(output_dir.resolve()),
        "pattern": pattern,
        "recursive": recursive,
        "model": {"name": entry.name, "weights_file": entry.weights.name, "weights_sha256": sha,
                  "weight_files": {p.name: file_sha256(p) for p in entry.weight_files()},
                  "user_model": entry.user, "card": entry.card},
        "options": dataclasses.asdict(options),
        "options_fingerprint": fingerprint,
        "execution": execution,
        "versions": package_versions(),
        "platform": platform.platform(),
        "command": " ".join(sys.argv) if sys.argv and sys.argv[0] else None,
        "previous_runs": _previous_runs(manifest_path),
    }


def _split_finished(tasks: list, redo: bool) -> tuple[dict[str, dict], list]:
    """Summary rows of the images an earlier run finished, and the tasks still to do."""
    rows: dict[str, dict] = {}
    todo = []
    for task in tasks:
        row = None if redo else finished_row(task)
        if row is None:
            todo.append(task)
        else:
            rows[task.rel] = row
    return rows, todo


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
        For fatal problems only (missing input folder, output = input, unknown model, no images).
        Problems with single images are recorded in the summary.
    """
    from .. import zoo
    from ..errors import Cancelled

    options = options or BatchOptions()
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    _check_folders(input_dir, output_dir, force)
    try:
        entry = zoo.get_entry(options.model)
    except (KeyError, FileNotFoundError) as exc:
        raise NucleisegError(str(exc.args[0] if exc.args else exc)) from None
    # record the concrete model and post-processing values, so that a run with the model's own
    # values spelled out (the widget) resumes a run that left them at None (the CLI), and back
    post = entry.postprocess()
    options = dataclasses.replace(
        options, model=entry.name,
        **{k: post[k] if getattr(options, k) is None else getattr(options, k)
           for k in zoo.DEFAULT_POSTPROCESS})
    sha = weights_sha256(entry.name)
    tasks = plan_tasks(input_dir, output_dir, options, pattern, recursive, model_sha256=sha)
    if not tasks:
        raise NucleisegError(f"no image files matching {pattern!r} in {input_dir}"
                             + ("" if recursive else " (use recursive to search sub-folders)"))
    output_dir.mkdir(parents=True, exist_ok=True)
    # a second run would delete this run's partial files and interleave its summary
    with FolderLock(output_dir / STATE_DIR / LOCK_NAME, output_dir):
        remove_partial_files(output_dir)

        summary_path, manifest_path = output_dir / SUMMARY_NAME, output_dir / MANIFEST_NAME
        if scheduler and client is None:
            from distributed import Client

            own_client = Client(scheduler)
        else:
            own_client = None
        dask_client = client or own_client
        workers = max(1, int(workers))
        threads = threads_per_worker or max(1, (os.cpu_count() or 1) // workers)
        execution = ({"dask_scheduler": dask_client.scheduler.address} if dask_client is not None
                     else {"workers": workers, "threads_per_worker": threads if workers > 1 else None})
        manifest = _new_manifest(input_dir, output_dir, pattern, recursive, entry, sha, options,
                                 tasks[0].fingerprint, execution, manifest_path)
        atomic_write_text(manifest_path, json.dumps(manifest, indent=1, default=str))

        t0 = time.monotonic()
        rows, todo = _split_finished(tasks, redo)
        processed = 0
        last_summary = time.monotonic()

        def report(row: dict) -> None:
            if progress is None:
                return
            elapsed = time.monotonic() - t0
            left = len(tasks) - len(rows)
            eta = elapsed / processed * left if processed else None
            progress(BatchProgress(len(rows), len(tasks), row, elapsed, eta))

        status = "interrupted"
        try:
            for task in tasks:
                if task.rel in rows:
                    report(rows[task.rel])
            if dask_client is not None:
                results = _run_dask(todo, options, cancel, dask_client)
            elif workers > 1 and len(todo) > 1:
                results = _run_pool(todo, options, cancel, min(workers, len(todo)), threads)
            else:
                results = _run_local(todo, options, cancel, threads_per_worker)
            # closing(): the pool / Dask futures are released even if a progress callback raises
            with contextlib.closing(results):
                try:
                    for task, row in results:
                        rows[task.rel] = row
                        processed += 1
                        report(row)
                        if time.monotonic() - last_summary > _SUMMARY_EVERY_S:
                            _write_summary(summary_path, tasks, rows)
                            last_summary = time.monotonic()
                except Cancelled:
                    pass
            status = "cancelled" if len(rows) < len(tasks) else "completed"
        finally:
            summary = _write_summary(summary_path, tasks, rows)
            manifest.update(status=status, finished=_now(), images=len(tasks),
                            ok=int((summary["status"] == OK).sum()), failed=int((summary["status"] == ERROR).sum()),
                            from_previous_runs=int(summary["from_previous_run"].sum()),
                            not_processed=int((summary["status"] == PENDING).sum()))
            atomic_write_text(manifest_path, json.dumps(manifest, indent=1, default=str))
            if own_client is not None:
                own_client.close()
        return BatchResult(summary, summary_path, manifest_path, status, output_dir)


def _previous_runs(manifest_path: Path) -> list[dict]:
    """Start/end/status of the earlier runs into this folder (kept in the manifest)."""
    try:
        old = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return []
    keep = ("started", "finished", "status", "images", "ok", "failed", "options_fingerprint")
    return old.get("previous_runs", []) + [{k: old.get(k) for k in keep}]


def read_summary(output_dir) -> pd.DataFrame:
    """The summary table of a batch output folder."""
    return pd.read_csv(Path(output_dir) / SUMMARY_NAME, keep_default_na=False,
                       na_values={"mean_area": [""], "mean_confidence": [""]})
