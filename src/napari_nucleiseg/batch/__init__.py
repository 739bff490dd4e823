"""Segment a whole folder: resumable, atomic, in one process, a process pool or on a Dask cluster.

The unit of work is :func:`process_image`: a pure, picklable function that reads one image,
segments it, writes its outputs atomically and finally a *done marker*. The marker is what
makes a run resumable: an image counts as finished only when its marker exists, matches the
current options, model weights and input file, and every output it lists is present with
the recorded size and checksum. Everything else (an image whose outputs were half written when the run was
killed, an image that failed, an image whose input changed) is processed again.

Layout of the output folder (``stem`` is the input's path relative to the input folder,
without its suffix)::

    <stem>_labels.tif        instance labels (uint16, uint32 beyond 65535 nuclei; OME-TIFF with the
                             input's pixel size when it has one)
    <stem>_probability.tif   nucleus probability (optional)
    <stem>_uncertainty.tif   per-pixel uncertainty (optional)
    <stem>_overlay.png       outlines over the image (optional; none for images segmented out of core)
    <stem>_nuclei.csv        one row per nucleus
    summary.csv              one row per image: file, status, nuclei, mean area, confidence, error
    run_manifest.json        model and weights hash, options, versions, start/end time
    .nucleiseg_batch/        done markers (one JSON per finished image)

Modules, in the order of a run: ``options`` (what a run is told), ``plan`` (which images),
``fingerprint`` (hashes), ``resume`` (what an earlier run finished), ``worker`` (one image),
``executors`` (where images run), ``manifest`` (the run's record), ``lock`` (one run per
folder), ``run`` (the driver). Nothing here imports Qt or napari.
"""

from .fingerprint import file_sha256, options_fingerprint, weights_sha256
from .manifest import package_versions, read_summary
from .options import (
                      ERROR,
                      LOCK_NAME,
                      MANIFEST_NAME,
                      OK,
                      OUTPUT_SUFFIXES,
                      PENDING,
                      STATE_DIR,
                      SUMMARY_COLUMNS,
                      SUMMARY_NAME,
                      BatchOptions,
)
from .plan import ImageTask, find_images, plan_tasks
from .resume import finished_row, remove_partial_files
from .run import BatchProgress, BatchResult, run_batch
from .worker import process_image

__all__ = [
    "ERROR", "LOCK_NAME", "MANIFEST_NAME", "OK", "OUTPUT_SUFFIXES", "PENDING", "STATE_DIR", "SUMMARY_COLUMNS",
    "SUMMARY_NAME", "BatchOptions", "BatchProgress", "BatchResult", "ImageTask", "file_sha256", "find_images",
    "finished_row", "options_fingerprint", "package_versions", "plan_tasks", "process_image", "read_summary",
    "remove_partial_files", "run_batch", "weights_sha256",
]
