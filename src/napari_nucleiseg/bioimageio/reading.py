"""What a bioimage.io model description says, checked against what our pipeline can feed and read:
one 2D input of one nucleus channel (two for our own two-plane models) normalised by percentiles,
one output with a foreground channel (and maybe a border channel) of the input's size.

Nothing is loaded or run here; every refusal is one ``PackageError`` line naming the package and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import PackageError
from ..models import ARCHITECTURES
from ..zoo.catalog import card_problem
from ..zoo.foreign import MAX_SIZE_MIN, MAX_SIZE_STEP

#: Channel names (lower case, any part of the name) read as the foreground and the border map.
ROLE_WORDS = {
    "foreground": ("foreground", "fg", "nucle", "prob", "mask", "semantic", "cell", "object", "inside"),
    "border": ("border", "boundar", "contour", "edge", "outline"),
}
BACKGROUND_WORDS = ("background", "bg")
_AXIS_LETTER = {"batch": "b", "channel": "c"}


@dataclass
class Reading:
    """How to feed a package and read its output.

    Attributes
    ----------
    input_axes, output_axes : str
        Axis letters (``b``, ``c``, ``y``, ``x``) in the package's order.
    in_channels : int
    channels : list of int
        Output channels of the foreground and, when there is one, the border.
    outputs : list of str
        Our names of those channels (``["foreground"]`` or ``["foreground", "border"]``).
    activation : str
        ``"sigmoid"``, ``"softmax"`` or ``"none"`` (``zoo.foreign.ImportedNet``).
    percentiles : (float, float)
    size_min, size_step : int
    ours : dict or None
        Our own card (``config.napari_nucleiseg`` of a package we exported) when its
        architecture is one of ours.
    """

    input_axes: str
    output_axes: str
    in_channels: int
    channels: list[int]
    outputs: list[str]
    activation: str
    percentiles: tuple[float, float]
    size_min: int = 1
    size_step: int = 1
    ours: dict | None = field(default=None)

    def adapter(self) -> dict:
        """The ``zoo.foreign.ImportedNet`` settings of a TorchScript import."""
        return {"input_axes": self.input_axes, "output_axes": self.output_axes, "channels": self.channels,
                "activation": self.activation, "size_min": self.size_min, "size_step": self.size_step}


def _letters(path: Path, what: str, axes) -> str:
    out = ""
    for ax in axes:
        letter = _AXIS_LETTER.get(ax.type) or (str(ax.id) if ax.type == "space" and str(ax.id) in "yx" else None)
        if letter is None:
            raise PackageError(f"{path}: its {what} has a {ax.type} axis {str(ax.id)!r}: only 2D images "
                               "(batch, channel, y, x) can be segmented")
        out += letter
    if "y" not in out or "x" not in out:
        raise PackageError(f"{path}: its {what} axes {out!r} lack y or x: not a 2D image model")
    return out


def _sizes(path: Path, axes) -> tuple[int, int]:
    """``(min, step)`` of the input's y and x sizes (one for both)."""
    from bioimageio.spec.model.v0_5 import ParameterizedSize

    sizes = {(ax.size.min, ax.size.step) if isinstance(ax.size, ParameterizedSize) else ax.size
             for ax in axes if ax.type == "space"}
    if len(sizes) != 1 or not isinstance(next(iter(sizes)), tuple):
        raise PackageError(f"{path}: its input's y and x sizes are {sorted(map(str, sizes))}: we tile any image "
                           "size, so only a size 'min + n * step' shared by y and x can be fed")
    size_min, size_step = next(iter(sizes))
    if not (0 < size_min <= MAX_SIZE_MIN and 0 < size_step <= MAX_SIZE_STEP):
        raise PackageError(f"{path}: its input size is {size_min} + n * {size_step} pixels; we pad tiles to at most "
                           f"{MAX_SIZE_MIN} + n * {MAX_SIZE_STEP}")
    return size_min, size_step


def _channel_names(axes) -> list[str]:
    names = [list(ax.channel_names) for ax in axes if ax.type == "channel"]
    return [str(n) for n in names[0]] if names else ["output"]


def _percentiles(path: Path, inp) -> tuple[float, float]:
    steps = [p for p in inp.preprocessing if p.id != "ensure_dtype"]
    if len(steps) != 1 or steps[0].id != "scale_range" or steps[0].kwargs.reference_tensor is not None:
        named = [p.id for p in steps] or ["none"]
        raise PackageError(f"{path}: its input preprocessing is {named}: only a percentile normalisation "
                           "(scale_range) of the input itself is what we can apply")
    kw = steps[0].kwargs
    axes = {str(a) for a in kw.axes} if kw.axes is not None else {"y", "x"}
    if not {"y", "x"} <= axes:
        raise PackageError(f"{path}: its percentile normalisation is over axes {sorted(axes)}, not the whole image")
    return float(kw.min_percentile), float(kw.max_percentile)


def _activation(path: Path, out) -> str:
    steps = [p for p in out.postprocessing if p.id != "ensure_dtype"]
    if not steps:
        return "none"
    if len(steps) == 1 and steps[0].id == "sigmoid":
        return "sigmoid"
    if len(steps) == 1 and steps[0].id == "softmax" and str(steps[0].kwargs.axis) == "channel":
        return "softmax"
    steps = [p.id for p in steps]
    raise PackageError(f"{path}: its output postprocessing is {steps}: we read probabilities (none, sigmoid "
                       "or softmax), not thresholded or custom outputs")


def _roles(path: Path, names: list[str]) -> tuple[list[int], list[str]]:
    """Output channels of the foreground (and border): the only channel, or the ones named so."""
    if len(names) == 1:
        return [0], ["foreground"]

    def words(n: str, role: str) -> bool:
        return any(w in n.lower() for w in ROLE_WORDS[role])

    def find(role):
        # a background channel is never the foreground ("background_probability" holds "prob"), nor a
        # border channel ("cell_boundary" holds "cell"); a name that is the role word itself comes first
        hits = [i for i, n in enumerate(names) if words(n, role) and not any(b in n.lower() for b in BACKGROUND_WORDS)
                and (role == "border" or not words(n, "border"))]
        exact = [i for i in hits if names[i].lower() in ROLE_WORDS[role]]
        return (exact or hits or [None])[0]

    fg, border = find("foreground"), find("border")
    if fg is None or fg == border:
        raise PackageError(f"{path}: none of its output channels {names} is named as a nucleus foreground map")
    return ([fg, border], ["foreground", "border"]) if border is not None else ([fg], ["foreground"])


def _same_size(path: Path, out, inp_id) -> None:
    from bioimageio.spec.model.v0_5 import SizeReference

    for ax in out.axes:
        if ax.type == "space":
            ok = (isinstance(ax.size, SizeReference) and ax.size.tensor_id == inp_id
                  and str(ax.size.axis_id) == str(ax.id) and ax.size.offset == 0 and ax.scale == 1.0)
            if not ok:
                raise PackageError(f"{path}: its output's {ax.id} size is not the input's: we need maps of "
                                   "the image's size")


def read_description(descr, path) -> Reading:
    """Check a loaded ``ModelDescr`` (spec 0.5) and say how to feed it and read it.

    Raises
    ------
    errors.PackageError
        One line naming ``path`` and the first thing we cannot handle.
    """
    path = Path(path)
    inputs = [t for t in descr.inputs if not t.optional]
    if len(inputs) != 1 or len(descr.outputs) != 1:
        raise PackageError(f"{path}: it has {len(inputs)} inputs and {len(descr.outputs)} outputs; "
                           "we feed one image and read one output tensor")
    inp, out = inputs[0], descr.outputs[0]
    in_axes, out_axes = _letters(path, "input", inp.axes), _letters(path, "output", out.axes)
    in_channels = len(_channel_names(inp.axes)) if "c" in in_axes else 1
    ours = _our_card(descr)
    problem = None if ours is None else card_problem(
        {k: ours[k] for k in ("config", "outputs", "postprocess", "sizing", "postprocess_by_kind") if k in ours})
    if problem is not None:
        raise PackageError(f"{path}: its napari_nucleiseg settings cannot be used: {problem}")
    if in_channels > (ours or {}).get("config", {}).get("in_channels", 1):
        raise PackageError(f"{path}: its input takes {in_channels} channels; we feed one nucleus channel")
    size_min, size_step = _sizes(path, inp.axes)
    _same_size(path, out, inp.id)
    channels, outputs = _roles(path, _channel_names(out.axes))
    if ours is not None:
        channels, outputs = list(range(len(ours["outputs"]))), list(ours["outputs"])
    return Reading(in_axes, out_axes, in_channels, channels, outputs, _activation(path, out),
                   _percentiles(path, inp), int(size_min), int(size_step), ours)


def _our_card(descr) -> dict | None:
    """``config.napari_nucleiseg`` when it names one of our architectures (as ``export`` writes)."""
    ours = (descr.config.model_extra or {}).get("napari_nucleiseg") if descr.config else None
    if not isinstance(ours, dict) or ours.get("architecture") not in ARCHITECTURES:
        return None
    if not isinstance(ours.get("config", {}), dict) or not isinstance(ours.get("outputs"), list):
        return None
    return ours
