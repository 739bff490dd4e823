"""``nucleiseg segment INPUT... --out DIR``."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InvalidImageError, NucleisegError
from . import add_diameter_option


def register(sub) -> None:
    p = sub.add_parser("segment", help="segment images, writing labels, probability, uncertainty and a CSV")
    p.add_argument("inputs", nargs="+", help="image files (TIFF, PNG, JPEG)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--model", default="default", help="zoo model name (see `nucleiseg zoo`)")
    p.add_argument("--tta", action="store_true", help="test-time augmentation (8 flips/rotations)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--threshold", type=float, default=None)
    p.add_argument("--min-size", type=int, default=None)
    add_diameter_option(p)
    p.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.png")
    p.set_defaults(func=run)


def write_outputs(seg, image, out: Path, stem: str, overlay: bool = False) -> list[Path]:
    """Write the four result files (and an overlay PNG) for one image; returns their paths."""
    from ..io.images import write_csv, write_png, write_tiff
    from ..io.overlay import overlay_png

    paths = {
        "labels": out / f"{stem}_labels.tif",
        "probability": out / f"{stem}_probability.tif",
        "uncertainty": out / f"{stem}_uncertainty.tif",
        "nuclei": out / f"{stem}_nuclei.csv",
    }
    dtype = "uint16" if seg.labels.max() < 65536 else "uint32"
    write_tiff(paths["labels"], seg.labels.astype(dtype))
    write_tiff(paths["probability"], seg.probability)
    write_tiff(paths["uncertainty"], seg.uncertainty)
    write_csv(paths["nuclei"], seg.table)
    if overlay:
        paths["overlay"] = out / f"{stem}_overlay.png"
        if seg.labels.ndim == 3:  # a stack: the overlay shows the middle plane
            z = seg.labels.shape[0] // 2
            image, labels = image[z], seg.labels[z]
        else:
            labels = seg.labels
        write_png(paths["overlay"], overlay_png(image, labels))
    return list(paths.values())


def _segment_file(path: Path, args):
    from ..io.images import read_image
    from ..inference.pipeline import combine_planes, is_stack, segment, segment_stack

    image = read_image(path)
    opts = dict(model=args.model, tta=args.tta, device=args.device,
                threshold=args.threshold, min_size=args.min_size, diameter=args.diameter)
    try:
        if is_stack(image):
            return image, combine_planes(segment_stack(image, **opts))
        return image, segment(image, **opts)
    except InvalidImageError as exc:
        raise NucleisegError(f"{path}: {exc}") from None


def run(args) -> int:
    out = Path(args.out)
    failures = 0
    for i, name in enumerate(args.inputs, 1):
        path = Path(name)
        try:
            image, seg = _segment_file(path, args)
        except NucleisegError as exc:
            print(f"nucleiseg segment: error: {exc}", file=sys.stderr)
            failures += 1
            continue
        write_outputs(seg, image, out, path.stem, overlay=args.overlay)
        shrunk = f", large nuclei: segmented at {seg.zoom:.2f}x" if seg.zoom < 1 else ""
        print(f"[{i}/{len(args.inputs)}] {path.name}: {seg.labels.max()} nuclei ({seg.model}, {seg.device}{shrunk})")
    return 1 if failures else 0
