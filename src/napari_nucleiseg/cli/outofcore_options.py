"""The out-of-core flags of ``nucleiseg segment`` and the route a file takes with them."""

from __future__ import annotations

import argparse
from pathlib import Path

from .options import positive_int


def _halo(text: str):
    """An argparse type: ``auto`` or a whole number of pixels."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 'auto' or a whole number of pixels, not {text!r}")
    return value


def add_out_of_core_options(parser: argparse.ArgumentParser) -> None:
    """``--out-of-core``, ``--block``, ``--halo``, ``--workers``, ``--processes``, ``--scheduler``, ``--level``."""
    from ..outofcore.blocks import DEFAULT_BLOCK

    g = parser.add_argument_group(
        "images larger than memory",
        "zarr / OME-Zarr folders, and TIFFs above $NUCLEISEG_OUT_OF_CORE_PIXELS (default 36 MP), are "
        "segmented block by block into OUT/<name>_outofcore/ (OME-Zarr labels and maps, nuclei.csv); "
        "a killed run resumes")
    g.add_argument("--out-of-core", action="store_true", help="segment block by block whatever the image size")
    g.add_argument("--block", type=int, default=DEFAULT_BLOCK, help="block (and output chunk) side in pixels")
    g.add_argument("--halo", default="auto", type=_halo, help="pixels read around each block (default: auto)")
    g.add_argument("--workers", type=positive_int, default=1, help="blocks segmented at once on this machine")
    g.add_argument("--processes", action="store_true", help="workers are processes (default: threads)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the blocks on this Dask scheduler (tcp://host:8786)")
    g.add_argument("--level", type=int, default=0, help="pyramid level of a multiscale image to segment")


def check_out_of_core_options(args) -> None:
    """Refuse the out-of-core flags before any image is segmented (they were checked only when a file
    took the out-of-core route, after the others were done)."""
    from ..dask_client import checked_address
    from ..errors import OptionError
    from ..outofcore.run import check_block

    check_block(args.block, args.halo)
    if args.level < 0:
        raise OptionError(f"--level {args.level}: pyramid levels are numbered from 0 (full resolution)")
    if args.scheduler is not None:
        checked_address(args.scheduler)


def wants_out_of_core(path: Path, args) -> bool:
    from ..outofcore.auto import needs_out_of_core

    return bool(args.out_of_core) or needs_out_of_core(path)


def segment_out_of_core_file(path: Path, out: Path, options, args) -> str:
    """Segment ``path`` out of core; returns the line to print."""
    from ..inference.measure import unsure_note
    from ..io.results import result_stem
    from ..outofcore.auto import result_folder, segment_file
    from ..zoo import unsure_below_of

    result, summary = segment_file(
        path, out / result_stem(path), options, probability=not args.no_probability,
        uncertainty=not args.no_uncertainty, block=args.block, halo=args.halo, level=args.level,
        workers=args.workers, mode="processes" if args.processes else "threads", scheduler=args.scheduler,
        overwrite=True)  # as an in-memory result: the same run resumes, another one replaces it
    earlier = result.blocks - result.blocks_run
    again = f", {earlier} blocks from an earlier run" if earlier else ""
    note = unsure_note(summary["mean_confidence"], unsure_below_of(result.settings["model"]))
    return (f"{path.name}: {summary['nuclei']} nuclei, out of core in {result.blocks} blocks{again} "
            f"({result.settings['weights']}) -> {result_folder(out / result_stem(path))}"
            + (f"\n    {note}" if note else ""))
