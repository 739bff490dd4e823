"""What runs an imported bioimage.io model, without the bioimageio extra: the TorchScript adapter
(axes, padding, activations), maps without a border, and the one-line hint when the extra is missing."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from torch import nn

from napari_nucleiseg.errors import BioimageioMissing
from napari_nucleiseg.inference.postprocess import instances_from_maps
from napari_nucleiseg.inference.predict import predict_maps
from napari_nucleiseg.zoo.foreign import ImportedNet, to_axes


class EvenOnly(nn.Module):
    """A net that needs sizes of 8 + 4k (it fails otherwise) and outputs 3 channels: x, 2x, -x."""

    def forward(self, x):
        h, w = x.shape[-2:]
        torch._assert((h - 8) % 4 == 0 and (w - 8) % 4 == 0 and h >= 8 and w >= 8, "bad size")
        return torch.cat([x, 2 * x, -x], dim=1)


def test_to_axes_reorders_adds_and_drops_axes():
    t = torch.arange(24.0).reshape(2, 3, 4)  # y x c
    out = to_axes(t, "yxc", "bcyx")
    assert out.shape == (1, 4, 2, 3) and out[0, 1, 0, 2] == t[0, 2, 1]
    assert torch.equal(to_axes(out, "bcyx", "yxc"), t)


def test_adapter_pads_to_accepted_sizes_and_crops_back():
    net = ImportedNet(torch.jit.script(EvenOnly()), "bcyx", "bcyx", channels=[1], activation="sigmoid",
                      size_min=8, size_step=4)
    x = torch.rand(1, 1, 13, 9)
    y = net(x)
    assert y.shape == (1, 1, 13, 9)
    torch.testing.assert_close(y, 2 * x)  # the second channel, cropped back to the input


def test_adapter_turns_probabilities_and_softmax_into_our_logits():
    p = torch.rand(1, 1, 8, 8) * 0.98 + 0.01
    probs = ImportedNet(torch.jit.script(nn.Identity()), "bcyx", "bcyx", [0], "none")
    torch.testing.assert_close(torch.sigmoid(probs(p)), p, atol=1e-5, rtol=1e-5)
    logits = torch.randn(1, 3, 8, 8)
    soft = ImportedNet(torch.jit.script(nn.Identity()), "bcyx", "bcyx", [1, 2], "softmax")
    torch.testing.assert_close(torch.sigmoid(soft(logits)), torch.softmax(logits, 1)[:, 1:], atol=1e-5, rtol=1e-5)


def test_a_foreground_only_model_gives_maps_without_border_that_still_split():
    yy, xx = np.mgrid[:64, :96]
    two = ((yy - 32) ** 2 + (xx - 36) ** 2 < 14**2) | ((yy - 32) ** 2 + (xx - 60) ** 2 < 14**2)  # touching discs
    logit = torch.from_numpy(np.where(two, 6.0, -6.0).astype(np.float32))

    class Fixed(nn.Module):
        def forward(self, x):
            return logit.expand(x.shape[0], 1, -1, -1)

    maps = predict_maps(Fixed(), np.zeros((64, 96), np.float32), torch.device("cpu"))
    assert "border" not in maps and maps["foreground"].shape == (64, 96)
    labels = instances_from_maps(maps["foreground"], None)
    assert ndi.label(labels > 0)[1] == 1 and labels.max() == 2  # one blob, two nuclei


def test_missing_extra_is_one_line_with_the_install_command(monkeypatch):
    import napari_nucleiseg.bioimageio as bio

    def absent(name):
        raise ImportError(f"No module named {name!r}")

    monkeypatch.setattr(bio.importlib, "import_module", absent)
    with pytest.raises(BioimageioMissing) as err:
        bio.require("bioimageio.spec")
    assert "pip install 'napari-nucleiseg[bioimageio]'" in str(err.value) and "\n" not in str(err.value)
    assert not bio.available()
    from napari_nucleiseg.bioimageio.export import export_package

    with pytest.raises(BioimageioMissing):
        export_package("unet16", "x.zip")


def test_the_package_and_core_modules_do_not_import_bioimageio():
    code = ("import sys, napari_nucleiseg, napari_nucleiseg.zoo, napari_nucleiseg.inference.pipeline, "
            "napari_nucleiseg.batch, napari_nucleiseg.cli, napari_nucleiseg.bioimageio, "
            "napari_nucleiseg.bioimageio.export, napari_nucleiseg.bioimageio.package_import; "
            "print([m for m in sys.modules if m.startswith('bioimageio')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
