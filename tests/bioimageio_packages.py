"""Foreign bioimage.io packages for the import tests, built with bioimageio.spec: a TorchScript
network with one foreground-probability output (as other tools export), and variants that must be
refused (a state dict of an architecture that is not ours, a 3D input)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from napari_nucleiseg.bioimageio.content import scale_range, test_image
from napari_nucleiseg.zoo import load_weights_file


class ForegroundOnly(nn.Module):
    """Our network's foreground map alone, as a probability (sigmoid inside the graph)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return torch.sigmoid(self.net(x)[:, :1])


def foreign_package(folder: Path, weights_path: Path, kind: str = "torchscript", axes: str = "bcyx") -> Path:
    """A package of ``ForegroundOnly(unet16)`` in ``folder``: ``kind`` ``"torchscript"`` or
    ``"foreign_state_dict"`` (its architecture a source file of another tool); ``axes`` ``"bcyx"`` or
    ``"bczyx"`` (a 3D input, refused)."""
    from bioimageio.spec import save_bioimageio_package
    from bioimageio.spec.model import v0_5 as s

    folder.mkdir(parents=True, exist_ok=True)
    net = ForegroundOnly(load_weights_file(weights_path)[0]).eval()
    raw, _ = test_image(1)
    raw = raw[:, :, :128, :128]
    with torch.no_grad():
        expected = net(torch.from_numpy(scale_range(raw))).numpy()
    if "z" in axes:
        raw, expected = raw[:, :, None], expected[:, :, None]
    np.save(folder / "in.npy", raw)
    np.save(folder / "out.npy", expected)
    (folder / "README.md").write_text("# A foreign nuclei model\n\n## Validation\n\nNone.\n")
    version = s.Version(torch.__version__.split("+")[0])
    if kind == "torchscript":
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            torch.jit.trace(net, torch.zeros(1, 1, 64, 64)).save(str(folder / "model.pt"))
        weights = s.WeightsDescr(torchscript=s.TorchscriptWeightsDescr(source=folder / "model.pt",
                                                                        pytorch_version=version))
    else:
        (folder / "their_net.py").write_text("import torch\n\nclass TheirNet(torch.nn.Module):\n    pass\n")
        torch.save(net.state_dict(), folder / "state.pt")
        arch = s.ArchitectureFromFileDescr(source=folder / "their_net.py", callable=s.Identifier("TheirNet"))
        weights = s.WeightsDescr(pytorch_state_dict=s.PytorchStateDictWeightsDescr(
            source=folder / "state.pt", architecture=arch, pytorch_version=version))

    def space(cls, size):
        return [cls(id=s.AxisId(a), size=size(a)) for a in axes[2:]]

    z = lambda a: 1 if a == "z" else s.ParameterizedSize(min=16, step=16)  # noqa: E731
    ref = lambda a: 1 if a == "z" else s.SizeReference(tensor_id=s.TensorId("raw"), axis_id=s.AxisId(a))  # noqa: E731
    descr = s.ModelDescr(
        name="foreign nuclei model", description="a nucleus probability map",
        authors=[s.Author(name="Someone Else")], cite=[s.CiteEntry(text="A paper", url=s.HttpUrl("https://example.org"))],
        license=s.LicenseId("MIT"), documentation=s.FileDescr(source=folder / "README.md"),
        inputs=[s.InputTensorDescr(
            id=s.TensorId("raw"), axes=[s.BatchAxis(), s.ChannelAxis(channel_names=[s.Identifier("dapi")]),
                                        *space(s.SpaceInputAxis, z)],
            test_tensor=s.FileDescr(source=folder / "in.npy"), data=s.IntervalOrRatioDataDescr(type="float32"),
            preprocessing=[s.ScaleRangeDescr(kwargs=s.ScaleRangeKwargs(
                axes=[s.AxisId(a) for a in axes[2:]], min_percentile=1.0, max_percentile=99.8))])],
        outputs=[s.OutputTensorDescr(
            id=s.TensorId("probability"),
            axes=[s.BatchAxis(), s.ChannelAxis(channel_names=[s.Identifier("nuclei")]), *space(s.SpaceOutputAxis, ref)],
            test_tensor=s.FileDescr(source=folder / "out.npy"),
            data=s.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)))],
        weights=weights)
    return Path(save_bioimageio_package(descr, output_path=folder / f"foreign_{kind}_{axes}.zip"))
