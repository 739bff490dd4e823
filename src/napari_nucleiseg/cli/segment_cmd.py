"""``nucleiseg segment INPUT... --out DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InvalidImageError, NucleisegError
from .options import add_output_options, add_segment_options, segment_options
from .outofcore_options import add_out_of_core_options, segment_out_of_core_file, wants_out_of_core


def register(sub) -> None:
    p = sub.add_parser("segment", help="segment images, writing labels, probability, uncertainty and a CSV")
    p.add_argument("inputs", nargs="+", help="image files (TIFF, PNG, JPEG) or zarr / OME-Zarr folders")
    p.add_argument("--out", required=True, help="output folder")
    add_segment_options(p)
    add_output_options(p)
    add_out_of_core_options(p)
    p.set_defaults(func=run)


def _segment_file(path: Path, options):
    from ..inference.stack import segment_any
    from ..io.images import read_image

    image = read_image(path)
    try:
        return image, segment_any(image, options)
    except InvalidImageError as exc:
        raise NucleisegError(f"{path}: {exc}") from None


def run(args) -> int:
    from ..io.results import write_results

    out = Path(args.out)
    options = segment_options(args)
    failures = 0
    for i, name in enumerate(args.inputs, 1):
        path = Path(name)
        try:
            if wants_out_of_core(path, args):
                print(f"[{i}/{len(args.inputs)}] {segment_out_of_core_file(path, out, options, args)}")
                continue
            image, seg = _segment_file(path, options)
        except NucleisegError as exc:
            print(f"nucleiseg segment: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        write_results(seg, image, out / path.stem, probability=not args.no_probability,
                      uncertainty=not args.no_uncertainty, overlay=args.overlay)
        shrunk = f", large nuclei: segmented at {seg.zoom:.2f}x" if seg.zoom < 1 else ""
        print(f"[{i}/{len(args.inputs)}] {path.name}: {seg.labels.max()} nuclei ({seg.model}, {seg.device}{shrunk})")
    return 1 if failures else 0
