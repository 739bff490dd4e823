"""``SegmentOptions``: every choice that changes a segmentation, in one object shared by
``segment()``, the batch engine, the command line and the widgets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

POSTPROCESS_FIELDS = ("threshold", "border_threshold", "min_size", "min_mean_foreground")


@dataclass(frozen=True)
class SegmentOptions:
    """How to segment an image (see ``inference.pipeline.segment``).

    Attributes
    ----------
    model : str
        Zoo model name; ``"default"`` is the shipped default.
    tta : bool
        Average the 8 flips/rotations (slower, a little more accurate, better uncertainty).
    device : str or None
        ``"auto"`` (or None: the GPU when there is one), ``"cpu"``, ``"cuda"``, ``"mps"``.
    threshold, border_threshold, min_size, min_mean_foreground : optional
        Post-processing (``inference.postprocess.instances_from_maps``); None uses the values
        tuned for the model (its card).
    invert : bool or None
        True for dark nuclei on a bright background; None detects it.
    diameter : float, "auto" or None
        Typical nucleus diameter in pixels (``inference.sizing``); None never rescales.
    tile, overlap : int
        Tiling for large images (memory stays bounded by the tile).
    """

    model: str = "default"
    tta: bool = False
    device: str | None = "auto"
    threshold: float | None = None
    border_threshold: float | None = None
    min_size: int | None = None
    min_mean_foreground: float | None = None
    invert: bool | None = None
    diameter: float | str | None = "auto"
    tile: int = 1024
    overlap: int = 64

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """The option names (the fields of this class)."""
        return tuple(f.name for f in dataclasses.fields(SegmentOptions))

    @classmethod
    def build(cls, options: SegmentOptions | None = None, **changes) -> SegmentOptions:
        """``options`` (or the defaults) with ``changes``; unknown names raise TypeError."""
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

    def postprocess(self, post: dict) -> dict:
        """``post`` (a model's tuned settings) overridden by the values set here."""
        return {**post, **{k: getattr(self, k) for k in POSTPROCESS_FIELDS if getattr(self, k) is not None}}
