"""The unit of work: one image read, segmented, written whole, then marked done."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..errors import Cancelled, ImageReadError, NucleisegError, OutputWriteError, StopsRun
from ..inference.stack import segment_any
from ..io.images import read_image
from ..io.pixel_size import pixel_size, plane_size
from ..io.results import write_results
from ..io.writers import atomic_write_text
from ..memory import OUT_OF_CORE_HINT
from ..outofcore.auto import needs_out_of_core, result_folder, segment_file
from ..outofcore.store import LABELS, RUN_FILE
from .fingerprint import sha256_of, source_stamp, weights_sha256
from .options import ERROR, OK, BatchOptions
from .plan import ImageTask

#: A row with this key set ends the run (see ``_failed``); it is not a summary column.
STOP_KEY = "stops_run"


def error_text(exc: BaseException) -> str:
    if isinstance(exc, ImageReadError):  # the summary row names the file already
        return exc.reason
    if isinstance(exc, NucleisegError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return f"out of memory (MemoryError); {OUT_OF_CORE_HINT}"
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
    t0 = time.perf_counter()
    row = {"file": task.rel, "status": ERROR, "nuclei": 0, "mean_area": np.nan, "mean_confidence": np.nan,
           "error": "", "seconds": 0.0, "from_previous_run": False, "labels": ""}
    try:
        if task.weights_sha256 and weights_sha256(options.model) != task.weights_sha256:
            raise NucleisegError(f"the weights of model {options.model!r} on this worker differ from "
                                 "the ones the run was started with")
        stamp = source_stamp(task.source)
        if needs_out_of_core(task.source):
            paths = _segment_large(task, options, cancel, row)
        else:
            image = read_image(task.source, for_segmentation=True, channels=options.channel is not None)
            size = pixel_size(task.source)
            seg = segment_any(image, options.segment_options(), scale=plane_size(size), cancel=cancel)
            table = seg.table
            paths = write_results(seg, image, task.out_stem, options.probability, options.uncertainty,
                                  options.overlay, pixel_size=size)
            row.update(status=OK, nuclei=int(len(table)),
                       mean_area=float(table["area"].mean()) if len(table) else np.nan,
                       mean_confidence=float(table["confidence"].mean()) if len(table) else np.nan,
                       image_kind=seg.settings.get("image_kind", ""), zoom=seg.zoom, smoothing=seg.smoothing,
                       evened=seg.evened, labels=f"{task.stem}_labels.tif")
    except Cancelled:
        raise
    except Exception as exc:  # one bad image must never stop an overnight run
        return _failed(row, exc, t0)
    row["seconds"] = round(time.perf_counter() - t0, 3)
    marker = {"fingerprint": task.fingerprint, "source": stamp, "row": jsonable(row),
              "outputs": {p.relative_to(Path(task.out_stem).parent).as_posix(): _output_stamp(p) for p in paths},
              "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    try:
        atomic_write_text(task.marker, json.dumps(marker, indent=1))
    except OSError as exc:
        return _failed(row, OutputWriteError(Path(task.marker).parent, exc), t0)
    return row


def _output_stamp(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256_of(path)}


def _failed(row: dict, exc: Exception, t0: float) -> dict:
    """The row of an image that failed; ``STOP_KEY`` marks an error that stops the run (``errors.StopsRun``:
    every later image would fail the same way)."""
    row.update(status=ERROR, error=error_text(exc), seconds=round(time.perf_counter() - t0, 3))
    if isinstance(exc, StopsRun):
        row[STOP_KEY] = True
    return row


def _segment_large(task: ImageTask, options: BatchOptions, cancel, row: dict) -> list[Path]:
    """An image above the out-of-core threshold, block by block (``outofcore``), into
    ``<stem>_outofcore/``; a killed run's finished blocks are kept, and the folder belongs to the
    batch (options changed since: it is replaced). Fills ``row``; returns the files to check."""
    result, summary = segment_file(task.source, task.out_stem, options.segment_options(), options.probability,
                                   options.uncertainty, cancel=cancel, overwrite=True)
    done = result.settings
    row.update(status=OK, **summary, image_kind=done.get("image_kind", ""), zoom=float(done.get("zoom", 1.0)),
               smoothing=float(done.get("smoothing", 0.0)), evened=float(done.get("evened", 0.0)),
               labels=f"{result_folder(task.stem).as_posix()}/{LABELS}")
    return [result.table_path, result.folder / RUN_FILE]


def jsonable(row: dict) -> dict:
    return {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}


def crash_row(task: ImageTask, exc: BaseException) -> dict:
    return {"file": task.rel, "status": ERROR, "nuclei": 0, "mean_area": np.nan, "mean_confidence": np.nan,
            "error": f"the worker process died while processing this image ({type(exc).__name__}): out of "
                     "memory? (A Python script that runs a batch with several workers needs "
                     "'if __name__ == \"__main__\":' around it: each worker starts by importing the script.)",
            "seconds": 0.0, "from_previous_run": False, "labels": ""}


