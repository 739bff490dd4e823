"""The run's record: ``summary.csv`` (one row per image) and ``run_manifest.json`` (model,
weights, options, versions, times)."""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..inference.measure import is_unsure
from ..io.writers import write_csv
from .fingerprint import file_sha256
from .options import ERROR, OK, PENDING, SUMMARY_COLUMNS, SUMMARY_NAME, BatchOptions
from .plan import ImageTask

_VERSIONED_PACKAGES = ("napari-nucleiseg", "numpy", "scipy", "scikit-image", "torch", "tifffile",
                       "imageio", "pandas", "dask", "distributed")


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


def write_summary(path: Path, tasks, rows) -> pd.DataFrame:
    """Write ``summary.csv`` (images not processed yet get status ``PENDING``); returns the table."""
    df = _summary_frame(tasks, rows)
    write_csv(path, df.assign(**{c: df[c].map(_inert) for c in TEXT_COLUMNS}))
    return df


#: Summary columns that hold names and messages (a file name may be ``=HYPERLINK(...).tif``).
TEXT_COLUMNS = ("file", "error", "labels")
#: What makes a spreadsheet take a cell for a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _inert(text):
    """``text`` that a spreadsheet shows as text (``'`` before a formula's first character, and before
    an apostrophe, so that ``_as_written`` gives every name back)."""
    return "'" + text if isinstance(text, str) and text.startswith((*_FORMULA_START, "'")) else text


def _as_written(text):
    """``_inert`` undone."""
    escaped = isinstance(text, str) and text.startswith("'") and text[1:].startswith((*_FORMULA_START, "'"))
    return text[1:] if escaped else text


def finish_manifest(manifest: dict, status: str, summary: pd.DataFrame, unsure_below: float | None = None) -> dict:
    """The manifest with the run's end: status, time and counts per outcome (``unsure``: segmented
    images the model is unsure of, ``unsure_count`` with the model's cut ``unsure_below``)."""
    return {**manifest, "status": status, "finished": now(), "images": len(summary),
            "ok": int((summary["status"] == OK).sum()), "failed": int((summary["status"] == ERROR).sum()),
            "from_previous_runs": int(summary["from_previous_run"].sum()),
            "not_processed": int((summary["status"] == PENDING).sum()), "unsure": unsure_count(summary, unsure_below)}


def unsure_count(summary: pd.DataFrame, below: float | None = None) -> int:
    """Segmented images of ``summary`` whose mean nucleus confidence says the model is unsure of
    them (``inference.measure.is_unsure`` with the model's cut ``below``)."""
    return int(sum(is_unsure(c, below) for c in summary.loc[summary["status"] == OK, "mean_confidence"]))


def now() -> str:
    return datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")


def new_manifest(input_dir: Path, output_dir: Path, pattern: str, recursive: bool, entry, sha: str,
                  options: BatchOptions, fingerprint: str, execution: dict, manifest_path: Path) -> dict:
    """The run's manifest as it starts (status "running")."""
    return {
        "tool": "napari-nucleiseg batch",
        "status": "running",
        "started": now(),
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
        "previous_runs": previous_runs(manifest_path),
    }




def previous_runs(manifest_path: Path) -> list[dict]:
    """Start/end/status of the earlier runs into this folder (kept in the manifest)."""
    try:
        old = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return []
    keep = ("started", "finished", "status", "images", "ok", "failed", "options_fingerprint")
    return old.get("previous_runs", []) + [{k: old.get(k) for k in keep}]




def read_summary(output_dir) -> pd.DataFrame:
    """The summary table of a batch output folder."""
    df = pd.read_csv(Path(output_dir) / SUMMARY_NAME, keep_default_na=False,
                     na_values={"mean_area": [""], "mean_confidence": [""]})
    return df.assign(**{c: df[c].map(_as_written) for c in TEXT_COLUMNS if c in df})
