"""The segmentation options of ``options.SegmentOptions``, added the same way to every command
that segments (``segment``, ``batch``, ``evaluate``)."""

from __future__ import annotations

import argparse

from ..options import SegmentOptions, parse_diameter


def _diameter(text: str):
    try:
        return parse_diameter(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number of at least 1, not {text!r}")
    return value


def add_segment_options(parser: argparse.ArgumentParser) -> None:
    """``--model``, ``--tta``, ``--no-denoise``, ``--no-even-light``, ``--device``, post-processing,
    ``--invert``, ``--diameter``, tiling."""
    d = SegmentOptions()
    g = parser.add_argument_group(
        "segmentation", "A model may tune --threshold, --border-threshold, --min-size and --min-mean-foreground for "
                        "one kind of image (fluorescence, stained, bright-field); a value equal to the model's own "
                        "shared setting keeps that (the settings are in the model's card).")
    g.add_argument("--model", default=d.model, help="zoo model name (see `nucleiseg zoo`)")
    g.add_argument("--tta", action="store_true", help="test-time augmentation (8 flips/rotations)")
    g.add_argument("--no-denoise", dest="denoise", action="store_false",
                   help="never smooth the input of a noisy image (default: smooth it a little when it is "
                        "noisier than the training images, or spans only a few grey levels)")
    g.add_argument("--no-even-light", dest="even_light", action="store_false",
                   help="never even out uneven light (default: a bright-field or stained image lit "
                        "unevenly, e.g. with a darker side or corners, is evened out first)")
    g.add_argument("--channel", type=int, default=None, metavar="N",
                   help="the nucleus channel of a multichannel image, 0 = first (e.g. 2 for DAPI in the blue "
                        "of an RGB composite; a TIFF's channel axis of any length; default: all channels of an RGB "
                        "image; a two-channel image, or a TIFF of channels that are not RGB colour, needs one chosen)")
    g.add_argument("--device", default=d.device, help="auto, cpu, cuda or mps")
    g.add_argument("--threshold", type=float, default=None,
                   help="0-1: a pixel is nucleus when the model's probability is above this; lower it when "
                        "faint nuclei are missed, raise it when background is picked up (default: the model's)")
    g.add_argument("--border-threshold", type=float, default=None,
                   help="border probability below which a nucleus pixel may seed a nucleus (default: the model's)")
    g.add_argument("--min-size", type=int, default=None,
                   help="objects smaller than this area in pixels are dropped as debris (default: the model's)")
    g.add_argument("--min-mean-foreground", type=float, default=None,
                   help="drop nuclei whose mean foreground probability is lower (default: the model's)")
    contrast = g.add_mutually_exclusive_group()
    contrast.add_argument("--invert", dest="invert", action="store_true", default=None,
                          help="dark nuclei on a bright background (default: detect)")
    contrast.add_argument("--no-invert", dest="invert", action="store_false")
    g.add_argument("--diameter", type=_diameter, default=d.diameter, metavar="PX|auto|off",
                   help="typical nucleus diameter in pixels; larger nuclei than the model was trained "
                        "on are segmented on a shrunken image, much smaller ones (below 0.45 of its size) "
                        "on an enlarged one (default: auto, measured; off: never)")
    g.add_argument("--tile", type=int, default=d.tile,
                   help="largest network tile in pixels (bounds memory; larger images run in the fewest even tiles)")
    g.add_argument("--overlap", type=int, default=d.overlap, help="smallest overlap of neighbouring tiles in pixels")


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--no-probability``, ``--no-uncertainty``, ``--overlay``: which optional files to write."""
    g = parser.add_argument_group("outputs")
    g.add_argument("--no-probability", action="store_true", help="do not write <stem>_probability.tif")
    g.add_argument("--no-uncertainty", action="store_true", help="do not write <stem>_uncertainty.tif")
    g.add_argument("--overlay", action="store_true",
                   help="also write <stem>_overlay.png (not for images segmented out of core: open their "
                        "OME-Zarr result in napari)")


def segment_options(args: argparse.Namespace) -> SegmentOptions:
    """The ``SegmentOptions`` of parsed arguments (``add_segment_options``)."""
    return SegmentOptions(**{name: getattr(args, name) for name in SegmentOptions.names()})
