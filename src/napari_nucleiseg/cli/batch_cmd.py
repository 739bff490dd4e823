"""``nucleiseg batch INPUT_DIR OUTPUT_DIR``: segment a folder (resumable; process pool or Dask)."""

from __future__ import annotations

import sys

from ..errors import printable
from .options import add_output_options, add_segment_options, positive_int, segment_options


def register(sub) -> None:
    p = sub.add_parser(
        "batch", help="segment every image of a folder (resumes an interrupted run)",
        description="Segment every image of INPUT_DIR into OUTPUT_DIR: labels, probability and "
                    "uncertainty TIFFs, a per-nucleus CSV per image, summary.csv and run_manifest.json. "
                    "Re-running into the same OUTPUT_DIR skips finished images. Images that cannot be "
                    "read are recorded in summary.csv; the exit status is non-zero only for fatal errors "
                    "(or with --strict). A full or read-only output folder, or unloadable weights, stop the run "
                    "early (exit status 1) with summary.csv and run_manifest.json written.")
    p.add_argument("input_dir", help="folder of images (TIFF, PNG, JPEG)")
    p.add_argument("output_dir", help="folder for the results (not the input folder unless --force)")
    p.add_argument("--pattern", default="*", help="glob pattern for input files (default: all images)")
    p.add_argument("--recursive", "-r", action="store_true", help="also process sub-folders")
    add_segment_options(p)
    add_output_options(p)
    p.add_argument("--workers", "-j", type=positive_int, default=1, help="parallel worker processes (default 1)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per worker (default: cores/workers; with 1 worker: unchanged); "
                        "1 is much faster when other programs keep the cores busy")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on an existing Dask cluster (tcp://host:8786); workers must see the same paths")
    p.add_argument("--force", action="store_true", help="allow OUTPUT_DIR to be INPUT_DIR")
    p.add_argument("--redo", action="store_true", help="process every image again, ignoring finished ones")
    p.add_argument("--strict", action="store_true", help="exit with status 2 when any image failed")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def image_line(row) -> str:
    """What became of one image: ``"img01.tif: 8 nuclei"`` or ``"broken.tif: FAILED: ..."``."""
    name = printable(row["file"])
    if row["status"] == "ok":
        return f"{name}: {row['nuclei']} nuclei" + (" (done earlier)" if row.get("from_previous_run") else "")
    return f"{name}: FAILED: {printable(row['error'])}"


def run(args) -> int:
    """Run ``batch.run_batch`` with the parsed options; 0 unless ``--strict`` and an image failed."""
    from tqdm import tqdm

    from ..batch import BatchOptions, run_batch
    from ..batch.report import outcome_line

    options = BatchOptions(**vars(segment_options(args)), probability=not args.no_probability,
                           uncertainty=not args.no_uncertainty, overlay=args.overlay)
    bar = tqdm(unit="image", file=sys.stderr, disable=args.quiet, dynamic_ncols=True)

    def show(ev) -> None:
        bar.total = ev.total
        bar.update(ev.done - bar.n)
        bar.write(image_line(ev.row), file=sys.stderr)

    try:
        res = run_batch(args.input_dir, args.output_dir, options, pattern=args.pattern, recursive=args.recursive,
                        workers=args.workers, threads_per_worker=args.threads, scheduler=args.scheduler,
                        force=args.force, redo=args.redo, progress=None if args.quiet else show)
    finally:
        bar.close()
    print(f"{outcome_line(res)}; summary: {res.summary_path}")
    if res.n_failed:
        for _, row in res.summary[res.summary["status"] == "error"].iterrows():
            print(f"  failed: {printable(row['file'])}: {printable(row['error'])}", file=sys.stderr)
    if res.status == "stopped":
        print(f"nucleiseg batch: error: stopped early, {res.n_pending} images not processed: {printable(res.error)}",
              file=sys.stderr)
        return 1
    return 2 if (args.strict and res.n_failed) else 0
