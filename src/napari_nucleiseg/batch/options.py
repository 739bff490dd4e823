"""What a batch run is told: segmentation and output options, and the output folder's layout."""

from __future__ import annotations

from dataclasses import dataclass

from ..io.results import OUTPUT_SUFFIXES  # noqa: F401  (part of the batch layout)
from ..options import SegmentOptions

STATE_DIR = ".nucleiseg_batch"
LOCK_NAME = "run.lock"
SUMMARY_NAME = "summary.csv"
MANIFEST_NAME = "run_manifest.json"
#: ``image_kind``, ``zoom``, ``smoothing`` and ``evened`` say what ``segment()`` found and did to each
#: image (a stack's: its first plane's kind, its most rescaled, smoothed and evened plane's).
SUMMARY_COLUMNS = ["file", "status", "nuclei", "mean_area", "mean_confidence", "image_kind", "zoom", "smoothing",
                   "evened", "error", "seconds", "from_previous_run", "labels"]
#: Image statuses in the summary.
OK, ERROR, PENDING = "ok", "error", "not processed"


@dataclass(frozen=True)
class BatchOptions(SegmentOptions):
    """Segmentation options (``options.SegmentOptions``, the same as ``segment()``'s) and the
    output choices of a batch.

    Attributes
    ----------
    probability, uncertainty, overlay : bool
        Which optional outputs to write (labels and the per-nucleus CSV are always written).
    """

    probability: bool = True
    uncertainty: bool = True
    overlay: bool = False
