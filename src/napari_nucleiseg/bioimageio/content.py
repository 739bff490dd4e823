"""What a package holds besides its description: the network's files (TorchScript, state dict,
architecture source), test tensors made on a synthetic field, the cover and the README. No
``bioimageio`` import here: these are plain files in a folder."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import PackageError
from ..inference.preprocess import PERCENTILES
from ..models import ARCHITECTURES
from .source import SOURCE_NAME, architecture_source

#: The maps a package may output, in our networks' channel order.
MAP_NAMES = ("foreground", "border", "distance")
#: The spec's ``scale_range`` adds this to the percentile span.
SCALE_RANGE_EPS = 1e-6
#: Side of the test tensors (a multiple of every architecture's stride).
TEST_SIZE = 256


@dataclass
class PackageFiles:
    """The files written for one package (all in ``folder``) and what the description needs."""

    folder: Path
    torchscript: Path
    state_dict: Path
    source: Path
    callable: str
    test_input: Path
    test_output: Path
    cover: Path
    readme: Path
    stride: int
    input_names: list[str]
    output_names: list[str]


def exportable(entry) -> list[str]:
    """The output map names of zoo model ``entry``; raises ``PackageError`` unless it is one of
    our architectures that outputs maps only."""
    card = entry.card
    outputs = list(card.get("outputs", MAP_NAMES[:2]))
    if card.get("architecture") not in ARCHITECTURES:
        raise PackageError(f"{entry.weights}: model {entry.name!r} is not one of our architectures "
                           f"({card.get('architecture')!r}); only those export to bioimage.io")
    if outputs != list(MAP_NAMES[:len(outputs)]) or len(outputs) < 2:
        raise PackageError(f"{entry.weights}: model {entry.name!r} outputs {outputs}, not the maps "
                           f"{', '.join(MAP_NAMES)}; only map models export to bioimage.io")
    return outputs


def input_names(channels: int) -> list[str]:
    """Channel names of the input tensor (``preprocess.prepare_channels``' planes)."""
    return ["nucleus_signal"] if channels == 1 else ["nucleus_signal", "haematoxylin"]


def test_image(channels: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic fluorescence field (``synthetic.synthetic_nuclei``, touching nuclei) as the raw
    input tensor ``(1, C, S, S)`` float32 (the nucleus signal before normalisation; a second plane
    repeats it, as ``prepare_channels`` does for fluorescence) and its instance labels."""
    from ..synthetic import synthetic_nuclei

    image, labels = synthetic_nuclei((TEST_SIZE, TEST_SIZE), n_nuclei=40, touching=0.4, seed=seed)
    plane = image.astype(np.float32)
    return np.stack([plane] * channels)[None], labels


def scale_range(x: np.ndarray, percentiles: tuple[float, float] = PERCENTILES) -> np.ndarray:
    """The package's preprocessing, as the spec defines ``scale_range`` (per sample and channel)."""
    lo, hi = np.percentile(x, percentiles, axis=(-2, -1), keepdims=True)
    return ((x - lo) / (hi - lo + SCALE_RANGE_EPS)).astype(np.float32)


@torch.inference_mode()
def expected_output(net: torch.nn.Module, raw: np.ndarray) -> np.ndarray:
    """What the package must output for ``raw``: ``scale_range``, the network in float32, sigmoid."""
    return torch.sigmoid(net(torch.from_numpy(scale_range(raw)))).numpy().astype(np.float32)


def write_network(net: torch.nn.Module, arch: str, folder: Path) -> tuple[Path, Path, Path, str]:
    """TorchScript (traced at the test size), float32 state dict and architecture source of ``net``."""
    text, cls = architecture_source(arch)
    source = folder / SOURCE_NAME
    source.write_text(text)
    state = folder / "weights_state_dict.pt"
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in net.state_dict().items()}, state)
    script = folder / "weights_torchscript.pt"
    channels = next(p for p in net.parameters()).shape[1]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # checked by ``check_traced``
        traced = torch.jit.trace(net, torch.zeros(1, channels, TEST_SIZE, TEST_SIZE), check_trace=False)
    traced.save(str(script))
    return script, state, source, cls


def check_traced(script: Path, net: torch.nn.Module, raw: np.ndarray, stride: int) -> None:
    """The TorchScript file gives the network's output at the test size and at another multiple of
    ``stride`` (tracing fixes Python branches; refuse a graph that only fits one size)."""
    traced = torch.jit.load(str(script), map_location="cpu")
    x = torch.from_numpy(scale_range(raw))
    other = x[..., : 3 * stride, : 2 * stride]
    with torch.no_grad():
        for inp in (x, other):
            if not torch.allclose(traced(inp), net(inp), atol=1e-4, rtol=1e-4):
                raise PackageError(f"{script.name}: the traced TorchScript graph differs from the network "
                                   f"at input size {tuple(inp.shape[-2:])}")


def cover_image(raw: np.ndarray, output: np.ndarray) -> np.ndarray:
    """uint8 RGB cover, 2:1: the input (grey) beside it with the foreground in yellow and the border
    in magenta."""
    grey = scale_range(raw)[0, 0].clip(0, 1)
    left = np.repeat((grey * 255).astype(np.uint8)[..., None], 3, axis=-1)
    fg, border = output[0, 0], output[0, 1]
    right = np.stack([np.maximum(fg, border), fg * (1 - border), border], axis=-1)
    return np.concatenate([left, (right.clip(0, 1) * 255).astype(np.uint8)], axis=1)


def readme_text(entry, outputs: list[str], channels: int, stride: int) -> str:
    """The package's documentation: what it does, what the spec cannot say, validation figures."""
    card = entry.card
    post = entry.postprocess()
    val = card.get("validation", {})
    figures = ", ".join(f"{k} {v:.3f}" for k, v in val.items() if isinstance(v, float)) or "none recorded"
    target = entry.target_diameter()
    lines = [
        f"# napari-nucleiseg {entry.name}", "",
        card.get("description", ""), "",
        "## Input", "",
        f"`(batch, channel, y, x)`, float32, {channels} channel(s): {', '.join(input_names(channels))}. "
        "Nuclei must be **bright**: fluorescence as it is (the brightest channel of a colour image); "
        "bright-field grey images inverted (max - image); stained colour images as the darkness of their "
        f"{entry.stain_signal()} channel." + (" The second plane is the haematoxylin density (colour "
                                              "deconvolution, skimage `rgb2hed`); for other images it "
                                              "repeats the first." if channels == 2 else ""),
        f"Each plane is normalised by its 1st and 99.8th percentiles (`scale_range`). y and x must be "
        f"multiples of {stride}.", "",
        "## Output", "",
        f"`(batch, channel, y, x)` probabilities (a sigmoid over the network's logits): {', '.join(outputs)}.",
        "", "## What the description cannot express", "",
        "- The nucleus signal above (which channel, inversion) depends on the kind of image; "
        "napari-nucleiseg finds the kind from the pixels.",
        (f"- Nucleus size: the network was trained on nuclei about {target:g} px across; napari-nucleiseg "
         "measures the nuclei of a first pass and segments images with larger nuclei shrunk to that size."
         if target else "- Nucleus size: no rescaling is recorded for this model."),
        "- Instances: a marker-controlled watershed splits the foreground (probability > "
        f"{post['threshold']}) from seeds where the border probability is below {post['border_threshold']} "
        f"(or, with a distance map, where it is high); objects under {post['min_size']} px are dropped. "
        "This package outputs the maps only.",
        "- Tiling: napari-nucleiseg predicts 1024-px tiles with 64 px of blended overlap.", "",
        "## Training data", "", json.dumps(card.get("training", {}).get("data", "see the model card")), "",
        "## Validation", "",
        f"On the validation split named in the training record: {figures}.", "",
        "Model card (napari-nucleiseg):", "", "```json", json.dumps(card, indent=1, default=str)[:20000], "```", "",
    ]
    return "\n".join(lines)
