"""Networks imported from bioimage.io packages as TorchScript graphs, behind an adapter that makes
them look like ours: ``(N, C, H, W)`` in, logits of (foreground[, border]) out, any image size.

Loading such a model runs the package's TorchScript graph (``torch.jit.load``): TorchScript is
not pickle, it cannot run arbitrary Python, but its graph is the package author's computation.
No ``bioimageio`` import: an imported model runs without the extra.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: Card key of an imported network's adapter settings (written by ``bioimageio.package_import``).
ADAPTER_KEY = "imported_net"
#: The largest minimum input size and size step a graph may ask for: inputs are padded to them.
MAX_SIZE_MIN, MAX_SIZE_STEP = 1024, 512
#: Probabilities are clamped before the logit, so that our sigmoid gives them back.
_EPS = 1e-6


class ImportedNet(nn.Module):
    """A TorchScript network seen as ours.

    Parameters
    ----------
    net : torch.jit.ScriptModule
    input_axes, output_axes : str
        The package's axis order, letters of ``b`` (batch), ``c`` (channel), ``y``, ``x``
        (``"bcyx"`` for ours; a missing letter is an axis the tensor lacks).
    channels : list of int
        Output channels of the foreground and, when there is one, the border map.
    activation : str
        What the package applies to the output: ``"sigmoid"`` (the graph gives logits, as ours),
        ``"none"`` (it gives probabilities) or ``"softmax"`` (over the channels).
    size_min, size_step : int
        Spatial sizes the graph accepts: ``size_min + k * size_step``; inputs are padded to one
        and the output cropped back.
    """

    def __init__(self, net, input_axes: str, output_axes: str, channels: list[int], activation: str,
                 size_min: int = 1, size_step: int = 1):
        super().__init__()
        self.net = net
        self.input_axes, self.output_axes = input_axes, output_axes
        self.channels = list(channels)
        self.activation = activation
        self.size_min, self.size_step = max(1, int(size_min)), max(1, int(size_step))

    def _padded(self, n: int) -> int:
        k = max(0, -(-(n - self.size_min) // self.size_step))
        return self.size_min + k * self.size_step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = self._padded(h) - h, self._padded(w) - w
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if (ph < h and pw < w) else "replicate")
        y = self.net(to_axes(x.float(), "bcyx", self.input_axes)).float()
        y = to_axes(y, self.output_axes, "bcyx")[..., :h, :w]
        if self.activation == "softmax":
            y = torch.softmax(y, dim=1)
        y = y[:, self.channels]
        if self.activation == "sigmoid":
            return y
        p = y.clamp(_EPS, 1 - _EPS)
        return torch.log(p) - torch.log1p(-p)


def to_axes(t: torch.Tensor, have: str, want: str) -> torch.Tensor:
    """``t`` with axes ``have`` (letters) reordered to ``want``: axes only in ``want`` are added
    (size 1), axes only in ``have`` must have size 1 and are dropped."""
    for i in reversed(range(len(have))):
        if have[i] not in want:
            t = t.squeeze(i)
    kept = "".join(a for a in have if a in want)
    for a in want:
        if a not in kept:
            t = t.unsqueeze(-1)
            kept += a
    return t.permute([kept.index(a) for a in want])


def load_imported(path, adapter: dict, device="cpu") -> ImportedNet:
    """The TorchScript network in ``path`` behind its ``ImportedNet`` adapter (eval mode)."""
    net = torch.jit.load(str(path), map_location=device)
    return ImportedNet(net.eval(), adapter["input_axes"], adapter["output_axes"], adapter["channels"],
                       adapter["activation"], adapter.get("size_min", 1), adapter.get("size_step", 1)).eval()
