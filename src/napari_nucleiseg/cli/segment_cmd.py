"""``nucleiseg segment INPUT... [--out DIR]`` (default: results next to each input)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InvalidImageError, NucleisegError, StopsRun
from .options import add_output_options, add_segment_options, segment_options
from .outofcore_options import (
    add_out_of_core_options,
    check_out_of_core_options,
    segment_out_of_core_file,
    wants_out_of_core,
)


def register(sub) -> None:
    p = sub.add_parser("segment", help="segment images, writing labels, probability, uncertainty and a CSV")
    p.add_argument("inputs", nargs="+", help="image files (TIFF, PNG, JPEG) or zarr / OME-Zarr folders")
    p.add_argument("--out", default=None,
                   help="output folder (default: next to each input, <stem>_labels.tif etc., as cellpose does)")
    add_segment_options(p)
    add_output_options(p)
    add_out_of_core_options(p)
    p.set_defaults(func=run)


def _segment_file(path: Path, options, scale):
    """Read and segment one image, with a progress bar on a terminal (stage and tile)."""
    from tqdm import tqdm

    from ..inference.stack import segment_any
    from ..io.images import read_image

    image = read_image(path, for_segmentation=True, channels=options.channel is not None)
    with tqdm(total=100, desc=path.name, file=sys.stderr, leave=False, disable=None,
              bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}") as bar:

        def progress(fraction: float, message: str) -> None:
            bar.update(int(round(100 * fraction)) - bar.n)
            bar.set_postfix_str(message, refresh=True)

        try:
            return image, segment_any(image, options, scale=scale, progress=progress)
        except InvalidImageError as exc:
            raise NucleisegError(f"{path}: {exc}") from None


def _out_stem(path: Path, out: Path | None) -> Path:
    """Where the results of ``path`` go: ``<out or its folder>/<stem>`` (``io.results.result_stem``)."""
    from ..io.results import result_stem

    return (path.parent if out is None else out) / result_stem(path)


def _check_unique_outputs(paths: list[Path], out: Path | None) -> None:
    """Refuse inputs whose results would overwrite each other (``plate1/A01.tif plate2/A01.tif
    --out res``, or ``a.tif a.png`` next to each other) or another input (``a.tif a_labels.tif``),
    before any work."""
    from ..io.results import OUTPUT_SUFFIXES

    seen: dict[str, Path] = {}
    inputs = {str(p.absolute()).casefold(): p for p in paths}
    for path in paths:
        stem = _out_stem(path, out)
        key = str(stem.absolute()).casefold()
        if key in seen:
            raise NucleisegError(f"{seen[key]} and {path} would write the same result files "
                                 f"({stem.name}_labels.tif ...); segment them into different --out folders")
        seen[key] = path
        for suffix in OUTPUT_SUFFIXES:
            if (victim := inputs.get(key + suffix.casefold())) is not None:
                raise NucleisegError(f"the results of {path} would replace the input {victim}; "
                                     "segment them into an --out folder, or rename the input")


def _earlier_results(paths: list[Path]) -> list[Path]:
    """Inputs that are results ``segment`` wrote for another input (``a_labels.tif`` beside ``a.tif``
    and ``a_nuclei.csv``), as ``segment *.tif`` run twice in one folder takes them."""
    from ..io.results import result_of, result_stem

    stems = {(p.parent.absolute(), result_stem(p).casefold()) for p in paths}
    return [p for p in paths if (base := result_of(p)) is not None
            and (p.parent.absolute(), base.casefold()) in stems and (p.parent / f"{base}_nuclei.csv").is_file()]


def run(args) -> int:
    from ..device import resolve_device
    from ..inference.measure import mean_confidence, unsure_note
    from ..io.pixel_size import pixel_size, plane_size
    from ..io.results import write_results
    from ..zoo import unsure_below_of

    out = None if args.out is None else Path(args.out)
    if out is not None and out.exists() and not out.is_dir():
        raise NucleisegError(f"--out {out} is a file, not a folder")
    options = segment_options(args)  # refuses bad values before any work
    check_out_of_core_options(args)
    earlier = _earlier_results([Path(name) for name in args.inputs])
    for path in earlier:
        print(f"nucleiseg segment: warning: {path} is a result of an earlier run, not an image: skipped",
              file=sys.stderr)
    args.inputs = [name for name in args.inputs if Path(name) not in earlier]
    if not args.inputs:
        raise NucleisegError("every input is a result of an earlier run: nothing to segment")
    _check_unique_outputs([Path(name) for name in args.inputs], out)
    resolve_device(options.device)
    failures = 0
    for i, name in enumerate(args.inputs, 1):
        path = Path(name)
        try:
            if wants_out_of_core(path, args):
                line = segment_out_of_core_file(path, path.parent if out is None else out, options, args)
                if args.overlay:
                    line += "\n    no overlay: a result segmented out of core has none (open it in napari)"
                print(f"[{i}/{len(args.inputs)}] {line}")
                continue
            size = pixel_size(path)
            image, seg = _segment_file(path, options, plane_size(size))
            write_results(seg, image, _out_stem(path, out), probability=not args.no_probability,
                          uncertainty=not args.no_uncertainty, overlay=args.overlay, pixel_size=size)
        except StopsRun:
            raise  # every other file would fail the same way (unloadable weights, a full disk)
        except NucleisegError as exc:
            print(f"nucleiseg segment: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        size = "large" if seg.zoom < 1 else "small"
        shrunk = f", {size} nuclei: segmented at {seg.zoom:.2f}x" if seg.zoom != 1 else ""
        print(f"[{i}/{len(args.inputs)}] {path.name}: {seg.labels.max()} nuclei ({seg.model}, {seg.device}{shrunk})")
        if note := unsure_note(mean_confidence(seg.table), unsure_below_of(seg.settings["model"])):
            print(f"    {note}")
    return 1 if failures else 0
