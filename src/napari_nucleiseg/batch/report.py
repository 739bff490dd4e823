"""The one-sentence account of a finished batch run, shared by ``nucleiseg batch`` and the widget."""

from __future__ import annotations

from ..inference.measure import UNSURE_BELOW
from .manifest import unsure_count


def outcome_line(result) -> str:
    """E.g. ``"0 of 10 images segmented, 10 already done"`` (what this run did, then what it found).

    Parameters
    ----------
    result : batch.run.BatchResult

    Returns
    -------
    str
        Images segmented in this run out of all, then those found finished by an earlier run,
        failed, (after a cancel or an interruption) not processed, and those of them the model
        is unsure of (``manifest.unsure_count``).
    """
    total = len(result.summary)
    parts = [f"{result.n_ok - result.n_skipped} of {total} images segmented"]
    if result.n_skipped:
        parts.append(f"{result.n_skipped} already done")
    if result.n_failed:
        parts.append(f"{result.n_failed} failed")
    if result.n_pending:
        parts.append(f"{result.n_pending} not processed ({result.status})")
    below = UNSURE_BELOW if result.unsure_below is None else result.unsure_below
    unsure = unsure_count(result.summary, below)
    if unsure:
        parts.append(f"the model is unsure of {unsure} (mean nucleus confidence below {below:g}: check those "
                     "first, by the summary's mean_confidence)")
    return ", ".join(parts)
