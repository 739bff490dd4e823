"""``export_package``: a zoo model as a bioimage.io model package (spec 0.5, ``bioimageio.spec``)."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..errors import PackageError, first_line
from ..inference.preprocess import PERCENTILES
from . import require
from .content import (
    PackageFiles,
    check_traced,
    cover_image,
    expected_output,
    exportable,
    input_names,
    readme_text,
    test_image,
    write_network,
)

U_NET = ("Ronneberger O, Fischer P, Brox T. U-Net: Convolutional Networks for Biomedical Image "
         "Segmentation. MICCAI 2015", "https://arxiv.org/abs/1505.04597")
RESNET = ("He K, Zhang X, Ren S, Sun J. Deep Residual Learning for Image Recognition. CVPR 2016",
          "https://arxiv.org/abs/1512.03385")
U_NET_PLUS = ("Long F. Microscopy cell nuclei segmentation with enhanced U-Net. BMC Bioinformatics 21, 8 "
              "(2020)", "https://doi.org/10.1186/s12859-019-3332-1")
RESNET_UNET = ("El Mokhtari Y. Instance segmentation of cell nuclei using convolutional neural network "
               "(U-Net with a ResNet encoder and watershed post-processing)",
               "https://github.com/yelmokht/nuclei-segmentation")
DSB = ("Caicedo JC et al. Nucleus segmentation across imaging experiments: the 2018 Data Science Bowl. "
       "Nature Methods 16, 1247-1253 (2019)", "https://doi.org/10.1038/s41592-019-0612-7")
#: The papers each architecture comes from (``/work/shared/papers.md``), then the training data's.
CITATIONS = {
    "unet": [U_NET],
    "residual_unet": [U_NET, RESNET],  # the residual U-Net paper (BCE + Dice) builds on both
    "resnet_unet": [RESNET_UNET, U_NET, RESNET],
    "unet_plus": [U_NET_PLUS, U_NET],
    "unet_plusplus": [U_NET_PLUS, U_NET],
}
#: Our licence (the code's, and the shipped weights' unless a card says otherwise).
DEFAULT_LICENCE = "BSD-3-Clause"
_SPDX = {"cc by-nc-sa 4.0": "CC-BY-NC-SA-4.0", "cc0": "CC0-1.0", "bsd-3-clause": "BSD-3-Clause",
         "mit": "MIT", "apache-2.0": "Apache-2.0", "cc by 4.0": "CC-BY-4.0"}


def licence_id(text: str) -> str:
    """The SPDX id of a card's licence line (``"CC BY-NC-SA 4.0, non-commercial (...)"`` ->
    ``CC-BY-NC-SA-4.0``); our default when the card names none."""
    head = re.split(r"[,(;]", text or "")[0].strip().lower()
    if not head:
        return DEFAULT_LICENCE
    if head in _SPDX:
        return _SPDX[head]
    known = _spdx_ids()
    for key in (head, head.removesuffix(" license").removesuffix(" licence")):
        if key in known:  # an SPDX id as such ("CC-BY-4.0", a package imported from bioimage.io)
            return known[key]
    raise PackageError(f"licence {text!r} has no SPDX id we know; give the card an SPDX licence")


def _spdx_ids() -> dict[str, str]:
    """The SPDX licence ids bioimage.io accepts, by lower-case id (empty where the library does not
    list them)."""
    from typing import get_args

    try:
        from bioimageio.spec._internal.license_id import LicenseIdLiteral
    except ImportError:
        return {}
    return {str(i).lower(): str(i) for i in get_args(LicenseIdLiteral)}


def export_package(name: str, out, authors: list[str] | None = None, maintainers: list[str] | None = None,
                   test: bool = False) -> Path:
    """Write zoo model ``name`` as a bioimage.io model package (zip, spec 0.5).

    The package holds TorchScript weights and a float32 state dict with a standalone architecture
    source (``source.architecture_source``: runs without napari-nucleiseg), test input and output
    tensors from a synthetic field, a cover, a README (with what the spec cannot express) and the
    zoo card under ``config.napari_nucleiseg`` (what ``package_import`` reads back).

    Parameters
    ----------
    name : str
        A shipped or user zoo model that outputs maps (foreground, border[, distance]).
    out : path
        The ``.zip`` to write (atomically: it appears whole or not at all).
    authors, maintainers : list of str, optional
        Author names (default: the napari-nucleiseg developers) and maintainers' GitHub user names.
    test : bool
        Also run ``bioimageio.core``'s test of the package; a failure is an error (no file written).

    Raises
    ------
    errors.PackageError
        For a model that cannot be exported, or a package that does not pass validation.
    errors.BioimageioMissing
        Without the ``bioimageio`` extra.
    """
    from ..zoo import get_entry, load_weights_file

    require("bioimageio.spec")
    out = Path(out)
    if out.suffix != ".zip":
        raise PackageError(f"{out}: a bioimage.io package is a .zip file")
    entry = get_entry(name)
    outputs = exportable(entry)
    net, _ = load_weights_file(entry.weights)
    with tempfile.TemporaryDirectory(prefix="nucleiseg-bioimageio-") as tmp:
        files = write_files(entry, net, outputs, Path(tmp))
        descr = describe(entry, files, authors or ["napari-nucleiseg developers"], maintainers or [])
        zipped = _save(descr, Path(tmp) / "package.zip")
        if test:
            check_package(zipped)
        from ..io.writers import write_set

        write_set([(out, lambda part: shutil.copyfile(zipped, part))])
    return out


def write_files(entry, net, outputs: list[str], folder: Path) -> PackageFiles:
    """Every file of the package, in ``folder``."""
    from ..io.writers import write_png

    channels = entry.input_channels()
    stride = int(getattr(net, "stride", 32))
    raw, _ = test_image(channels)
    expected = expected_output(net, raw)
    script, state, source, cls = write_network(net, entry.card["architecture"], folder)
    check_traced(script, net, raw, stride)
    test_in, test_out = folder / "test_input.npy", folder / "test_output.npy"
    np.save(test_in, raw)
    np.save(test_out, expected)
    cover = folder / "cover.png"
    write_png(cover, cover_image(raw, expected))
    readme = folder / "README.md"
    readme.write_text(readme_text(entry, outputs, channels, stride))
    return PackageFiles(folder, script, state, source, cls, test_in, test_out, cover, readme, stride,
                        input_names(channels), outputs)


def _tensors(files: PackageFiles):
    from bioimageio.spec.model import v0_5 as s

    def space(cls, size):
        return [cls(id=s.AxisId(a), size=size(a)) for a in ("y", "x")]

    param = lambda _a: s.ParameterizedSize(min=files.stride, step=files.stride)  # noqa: E731
    ref = lambda a: s.SizeReference(tensor_id=s.TensorId("input"), axis_id=s.AxisId(a))  # noqa: E731
    inp = s.InputTensorDescr(
        id=s.TensorId("input"), description="the nucleus signal (nuclei bright), see the README",
        axes=[s.BatchAxis(), s.ChannelAxis(channel_names=[s.Identifier(n) for n in files.input_names]),
              *space(s.SpaceInputAxis, param)],
        test_tensor=s.FileDescr(source=files.test_input),
        data=s.IntervalOrRatioDataDescr(type="float32"),
        preprocessing=[s.ScaleRangeDescr(kwargs=s.ScaleRangeKwargs(
            axes=[s.AxisId("y"), s.AxisId("x")], min_percentile=PERCENTILES[0], max_percentile=PERCENTILES[1]))])
    out = s.OutputTensorDescr(
        id=s.TensorId("output"), description=f"probabilities: {', '.join(files.output_names)}",
        axes=[s.BatchAxis(), s.ChannelAxis(channel_names=[s.Identifier(n) for n in files.output_names]),
              *space(s.SpaceOutputAxis, ref)],
        test_tensor=s.FileDescr(source=files.test_output),
        data=s.IntervalOrRatioDataDescr(type="float32", range=(0.0, 1.0)),
        postprocessing=[s.SigmoidDescr()])
    return inp, out


def _weights(entry, files: PackageFiles):
    import torch
    from bioimageio.spec.model import v0_5 as s

    version = s.Version(torch.__version__.split("+")[0])
    arch = s.ArchitectureFromFileDescr(source=files.source, callable=s.Identifier(files.callable),
                                       kwargs=dict(entry.card.get("config", {})))
    return s.WeightsDescr(
        pytorch_state_dict=s.PytorchStateDictWeightsDescr(source=files.state_dict, architecture=arch,
                                                          pytorch_version=version),
        torchscript=s.TorchscriptWeightsDescr(source=files.torchscript, pytorch_version=version,
                                              parent="pytorch_state_dict"))


def describe(entry, files: PackageFiles, authors: list[str], maintainers: list[str]):
    """The ``ModelDescr`` (spec 0.5) of ``entry`` over the files written by ``write_files``."""
    from bioimageio.spec.model import v0_5 as s

    from .. import __version__

    card = entry.card
    arch = card["architecture"]
    inp, out = _tensors(files)
    cites = [s.CiteEntry(text=t, url=s.HttpUrl(u)) for t, u in CITATIONS.get(arch, [U_NET]) + [DSB]]
    training = card.get("training", {})
    ours = {"name": entry.name, "architecture": arch, "config": card.get("config", {}), "outputs": files.output_names,
            "postprocess": entry.postprocess(), "postprocess_by_kind": card.get("postprocess_by_kind", {}),
            "sizing": card.get("sizing", {}), "stain_signal": entry.stain_signal(),
            "licence": entry.licence, "version": __version__}
    return s.ModelDescr(
        name=f"napari-nucleiseg {entry.name}",
        description=(re.sub(r"\s*\(papers? [^)]*\)", "", card.get("description", arch))
                     + ". Nuclei foreground and border probability maps; instances by a seeded watershed")[:1024],
        authors=[s.Author(name=a) for a in authors],
        maintainers=[s.Maintainer(github_user=m) for m in maintainers],
        cite=cites,
        license=s.LicenseId(licence_id(entry.licence)),
        documentation=s.FileDescr(source=files.readme),
        covers=[s.FileDescr(source=files.cover)],
        tags=["nuclei", "segmentation", "instance-segmentation", "2d", "pytorch", "napari-nucleiseg", arch],
        inputs=[inp], outputs=[out], weights=_weights(entry, files),
        config=s.Config(bioimageio=s.BioimageioConfig(
            architecture_type=arch, model_parameter_count=card.get("parameters"),
            training=s.TrainingDetails(training_preprocessing=str(training.get("data", "")) or None)),
            napari_nucleiseg=ours),
    )


def _save(descr, path: Path) -> Path:
    from bioimageio.spec import save_bioimageio_package

    try:
        return Path(save_bioimageio_package(descr, output_path=path))
    except ValueError as exc:
        raise PackageError(f"the package does not validate: {first_line(exc, 300)}") from None


def check_package(path) -> dict:
    """Run ``bioimageio.core``'s test of a package (its test tensors through every weights format);
    returns the summary; raises ``PackageError`` (one line: the first failed check) unless it passed."""
    core = require("bioimageio.core")
    summary = core.test_description(str(path))
    if summary.status != "passed":
        failed = [d for d in summary.details if d.status == "failed"]
        first = failed[0] if failed else None
        why = f"{first.name}: {first.errors[0].msg if first.errors else ''}" if first else summary.status
        raise PackageError(f"{path}: bioimageio test failed ({why[:300]})")
    return summary
