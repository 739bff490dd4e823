"""``SegmentOptions``: every choice that changes a segmentation, in one object shared by
``segment()``, the batch engine, the command line and the widgets."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

import numpy as np

from .errors import OptionError

POSTPROCESS_FIELDS = ("threshold", "border_threshold", "min_size", "min_mean_foreground")
#: Smallest tile edge: the networks downsample by up to 32.
MIN_TILE = 32
_DEVICE = re.compile(r"(auto|cpu|mps|cuda(:\d+)?)")


@dataclass(frozen=True)
class SegmentOptions:
    """How to segment an image (see ``inference.pipeline.segment``).

    Attributes
    ----------
    model : str
        Zoo model name; ``"default"`` is the shipped default.
    tta : bool
        Average the 8 flips/rotations (slower, a little more accurate, better uncertainty).
    denoise : bool
        Smooth the network's input a little when the image is noisier than the training images
        (``inference.denoise``; clean images are never changed).
    even_light : bool
        Even out the light of a bright-field or stained image lit unevenly before the model sees it
        (``inference.illumination``; evenly lit images are never changed).
    channel : int or None
        The nucleus channel of a multichannel image ``(Y, X, C)`` (0 = first; e.g. 2 for DAPI in the
        blue of an RGB composite); None uses every channel (``preprocess.nucleus_signal``).
    device : str, torch.device or None
        ``"auto"`` (or None: the GPU when there is one), ``"cpu"``, ``"cuda"``, ``"mps"``.
    threshold, border_threshold, min_size, min_mean_foreground : optional
        Post-processing (``inference.postprocess.instances_from_maps``); None uses the values
        tuned for the model (its card).
    invert : bool or None
        True for dark nuclei on a bright background; None detects it.
    diameter : float, "auto" or None
        Typical nucleus diameter in pixels (``inference.sizing``); None never rescales.
    tile, overlap : int
        Tiling for large images, the largest network tile and the smallest overlap of neighbouring
        tiles (``inference.predict.tile_layout``): ``tile >= MIN_TILE`` and ``0 <= overlap <= tile // 2``.

    Raises
    ------
    errors.OptionError
        On construction, for a value out of range or an unknown device name (one line naming
        the option), so that no entry point starts work with it.
    """

    model: str = "default"
    tta: bool = False
    denoise: bool = True
    even_light: bool = True
    channel: int | None = None
    device: str | None = "auto"
    threshold: float | None = None
    border_threshold: float | None = None
    min_size: int | None = None
    min_mean_foreground: float | None = None
    invert: bool | None = None
    diameter: float | str | None = "auto"
    tile: int = 1024
    overlap: int = 64

    def __post_init__(self):
        if type(self.device).__name__ == "device":  # a torch.device, as torch users pass it
            object.__setattr__(self, "device", str(self.device))
        for f in dataclasses.fields(self):  # NumPy numbers and bools (from a table or an array) as Python's
            if isinstance(getattr(self, f.name), np.generic):
                object.__setattr__(self, f.name, getattr(self, f.name).item())
        problem = _problem(self)
        if problem:
            raise OptionError(problem)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names (the fields of this class)."""
        return tuple(f.name for f in dataclasses.fields(SegmentOptions))

    @classmethod
    def build(cls, options: SegmentOptions | None = None, **changes) -> SegmentOptions:
        """``options`` (or the defaults) with ``changes``; unknown names raise TypeError."""
        if options is not None and not isinstance(options, SegmentOptions):
            raise TypeError(f"options must be SegmentOptions, not {type(options).__name__}; give single options "
                            "by name, e.g. segment(image, model='unet16')")
        base = options if options is not None else cls()
        unknown = sorted(set(changes) - set(cls.names()))
        if unknown:
            raise TypeError(f"unknown segmentation option(s): {', '.join(unknown)}")
        return dataclasses.replace(base, **changes) if changes else base

    def segment_options(self) -> SegmentOptions:
        """Only the segmentation options (drops what a subclass adds, e.g. output choices)."""
        return SegmentOptions(**{n: getattr(self, n) for n in SegmentOptions.names()})

    def with_postprocess(self, post: dict) -> SegmentOptions:
        """The options with every post-processing value spelt out: ``post`` where this is None."""
        return dataclasses.replace(
            self, **{k: post[k] if getattr(self, k) is None else getattr(self, k) for k in POSTPROCESS_FIELDS})

    def postprocess(self, post: dict, shared: dict | None = None) -> dict:
        """``post`` (a model's tuned settings for an image's kind) overridden by the values set here.

        A value equal to the model's own setting in ``shared`` (its settings for every kind, which the
        widgets show and batch runs spell out) is the model's, so the kind's setting in ``post`` stays.
        """
        shared = shared or {}
        given = {k: getattr(self, k) for k in POSTPROCESS_FIELDS if getattr(self, k) is not None}
        return {**post, **{k: v for k, v in given.items() if k not in shared or v != shared[k]}}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _problem(o: SegmentOptions) -> str | None:
    """Why these options cannot be used (None when they can)."""
    if not isinstance(o.model, str) or not o.model.strip():
        return f"model {o.model!r}: give a zoo model name (see `nucleiseg zoo`)"
    if o.device is not None and not (isinstance(o.device, str) and _DEVICE.fullmatch(o.device.lower())):
        return f"device {o.device!r}: use auto, cpu, cuda, cuda:N or mps"
    for name in ("tta", "denoise", "even_light"):
        v = getattr(o, name)
        if not isinstance(v, bool):
            return f"{name} {v!r}: must be True or False"
    for name in ("threshold", "border_threshold", "min_mean_foreground"):
        v = getattr(o, name)
        if v is not None and not (_is_number(v) and 0.0 <= v <= 1.0):
            return f"{name} {v!r}: must be a number from 0 to 1"
    if o.min_size is not None and not (_is_number(o.min_size) and o.min_size >= 0 and o.min_size == int(o.min_size)):
        return f"min_size {o.min_size!r}: must be a whole number of pixels, 0 or more"
    if o.channel is not None and not (isinstance(o.channel, (int, np.integer)) and not isinstance(o.channel, bool)
                                      and o.channel >= 0):
        return f"channel {o.channel!r}: must be a channel number, 0 or more (or None for all channels)"
    for name in ("tile", "overlap"):
        v = getattr(o, name)
        if not (isinstance(v, int) and not isinstance(v, bool)):
            return f"{name} {v!r}: must be a whole number of pixels"
    if o.tile < MIN_TILE:
        return f"tile {o.tile}: must be at least {MIN_TILE} pixels"
    if not 0 <= o.overlap <= o.tile // 2:  # more only multiplies the tiles (tile - 1 ran 20,000 on 300x200)
        return f"overlap {o.overlap}: must be 0 to half the tile ({o.tile // 2} pixels)"
    return _diameter_problem(o.diameter)


def _diameter_problem(diameter) -> str | None:
    try:
        parse_diameter(diameter)
    except ValueError as exc:
        return str(exc)
    return None


def parse_diameter(text) -> float | str | None:
    """``"auto"``, a diameter in pixels, or None for ``"0"``/``"off"``/``"none"``/None.

    Takes command-line text or a value from Python; raises ValueError for anything else.
    """
    if text is None:
        return None
    value = str(text).strip().lower()
    if value == "auto":
        return "auto"
    if value in ("0", "off", "none", ""):
        return None
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"nucleus diameter must be 'auto', 'off' or a number of pixels, not {text!r}") from None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"nucleus diameter must be a positive number of pixels, not {text!r}")
    return number or None
