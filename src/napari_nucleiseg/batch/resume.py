"""Resuming: which images an earlier run finished, and cleaning what a killed run left."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path, PurePosixPath

from ..outofcore.auto import result_folder
from .fingerprint import sha256_of, source_stamp
from .plan import ImageTask


def finished_row(task: ImageTask) -> dict | None:
    """The summary row stored by an earlier run if ``task`` is finished and complete, else None.

    Finished means: the done marker exists and is valid JSON, was written with the same options
    and model weights, for the same input file (size and modification time), and every output
    file it lists exists with the size it had when it was written and either its modification time
    (a resume reads no output again) or, where that changed (a copied folder, an edited file), its
    SHA-256 checksum.
    """
    try:
        marker = json.loads(Path(task.marker).read_text())
        known = {task.fingerprint, task.legacy_fingerprint} - {""}
        if marker.get("fingerprint") not in known or marker.get("source") != source_stamp(task.source):
            return None
        for name, stored in marker["outputs"].items():
            path = os.path.join(os.path.dirname(task.out_stem), name)
            st = os.stat(path)
            if st.st_size != stored["size"]:
                return None
            if st.st_mtime_ns != stored.get("mtime_ns") and sha256_of(path) != stored["sha256"]:
                return None
        return {**marker["row"], "from_previous_run": True}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def withdraw_stale(task: ImageTask) -> bool:
    """Remove what an earlier run wrote for ``task`` when it describes another version of the input
    file (its size or time changed since), after ``task`` failed this time: the folder then agrees with
    the summary's error row. Results of the same file are kept, whatever the options: they still
    describe the image, and a failure may pass (memory, another machine, a failed ``--redo``). The done
    marker goes first, so a killed removal leaves nothing that looks finished. Returns True when
    something was removed.
    """
    try:
        marker = json.loads(Path(task.marker).read_text())
        names = [PurePosixPath(n) for n in marker["outputs"]]
        # an input that cannot be reached now (a share gone, a file moved away) proves nothing stale
        if marker.get("source") == source_stamp(task.source):
            return False
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    folder = Path(task.out_stem).parent
    outofcore = result_folder(task.out_stem)
    try:
        os.unlink(task.marker)
    except OSError:  # a read-only folder: the results stay, and the error row says nothing of them
        return False
    removed = False
    for name in names:
        if name.is_absolute() or ".." in name.parts:  # a marker is never trusted to point elsewhere
            continue
        path = folder / name
        try:
            if path.parent == outofcore and outofcore.is_dir() and not outofcore.is_symlink():
                shutil.rmtree(outofcore)
                removed = True
            elif path.is_file() or path.is_symlink():
                path.unlink()
                removed = True
        except OSError:  # what stays no longer looks finished: a later run redoes the image
            continue
    return removed


def finished_since(tasks: list, rows: dict, since_ns: int) -> dict[str, dict]:
    """Summary rows of the ``tasks`` missing from ``rows`` whose outputs were completed at or after
    ``since_ns`` (``time.time_ns()``): images a run finished but did not record."""
    found = {}
    for task in tasks:
        if task.rel in rows:
            continue
        try:
            if os.stat(task.marker).st_mtime_ns < since_ns:
                continue
        except OSError:  # no marker: not finished
            continue
        row = finished_row(task)  # the outputs checked as a resume checks them
        if row is not None:
            found[task.rel] = {**row, "from_previous_run": False}
    return found


def remove_partial_files(output_dir) -> int:
    """Delete temporary ``.<name>.<random>.part`` files left by a killed run; returns how many."""
    n = 0
    for p in Path(output_dir).rglob(".*.part"):
        if p.is_file():
            p.unlink(missing_ok=True)
            n += 1
    return n


def split_finished(tasks: list, redo: bool) -> tuple[dict[str, dict], list]:
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


