"""``import_package``: a bioimage.io nuclei model package as a user zoo model (card + weights in the
user-models folder), whose foreground map our watershed then splits.

Safety: nothing in the package is executed as Python. A state dict is accepted only for one of our
architectures (named by ``config.napari_nucleiseg``, as ``export`` writes it), rebuilt from our own
code and read with ``weights_only=True``; the package's architecture source is never run. Other
networks are accepted as TorchScript (``torch.jit.load``: the package's TorchScript graph runs,
not pickled code). Everything is checked (description, axes, channels, weights, the package's own
test tensors reproduced) before the user-models folder is touched, and the card and weights then
appear together or not at all.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..errors import PackageError, first_line
from . import require
from .reading import Reading, read_description

#: Fraction of test-output elements that may differ beyond the tolerance (the spec's default:
#: 100 per million).
MISMATCH_FRACTION = 1e-4
TOLERANCE = 1e-3


def load_description(path: Path):
    """The package's ``ModelDescr``, updated to spec 0.5; one line for anything that is not one."""
    spec = require("bioimageio.spec")
    if not path.is_file():
        raise PackageError(f"{path}: no such file")
    if path.suffix != ".zip":
        raise PackageError(f"{path}: a bioimage.io package is a .zip file")
    check_sizes(path)
    remote = remote_sources(path)
    if remote:
        raise PackageError(f"{path}: it names files by URL ({remote[0]}); only packages that hold all their "
                           "files are imported (nothing is downloaded)")
    missing = missing_files(path)
    if missing:
        raise PackageError(f"{path}: not a valid bioimage.io model package (it names {missing[0]!r}, which "
                           "it does not hold)")
    try:
        # no I/O checks: they look up the citations' DOIs and URLs on the network (nothing may be
        # fetched); every file is read from the zip below, and the test output is reproduced
        descr = spec.load_model_description(path, format_version="latest", perform_io_checks=False)
    except Exception as exc:  # pydantic, zip and YAML errors: anything means "not a valid package"
        detail = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise PackageError(f"{path}: not a valid bioimage.io model package ({detail})") from None
    if not type(descr).__module__.endswith("v0_5"):
        raise PackageError(f"{path}: its description (format {descr.format_version}) cannot be read as spec 0.5")
    return descr


#: the largest file, all files together, and the largest test tensor a package may hold (bytes, unpacked):
#: a zip of a few MB can unpack to gigabytes, and everything is read into memory
MAX_MEMBER, MAX_TOTAL, MAX_TEST_TENSOR = 1 << 29, 1 << 30, 1 << 26
#: the most values a test tensor may hold: the network is run on it whole
MAX_TEST_VALUES = 2 * 1024 * 1024


def check_sizes(path: Path) -> None:
    """Refuse a package whose files would unpack beyond ``MAX_MEMBER`` each or ``MAX_TOTAL`` together."""
    import zipfile

    if path.stat().st_size > MAX_TOTAL:
        raise PackageError(f"{path}: it is {path.stat().st_size / 2**20:.0f} MiB; a model package is refused "
                           f"beyond {MAX_TOTAL >> 20} MiB")
    try:
        with zipfile.ZipFile(path) as z:
            sizes = [(i.filename, i.file_size) for i in z.infolist()]
    except Exception:  # not a zip: load_description says so
        return
    big = max(sizes, key=lambda s: s[1], default=("", 0))
    if big[1] > MAX_MEMBER or sum(n for _, n in sizes) > MAX_TOTAL:
        raise PackageError(f"{path}: it unpacks to {sum(n for _, n in sizes) / 2**20:.0f} MiB (largest file "
                           f"{big[0]}, {big[1] / 2**20:.0f} MiB); a model package is refused beyond "
                           f"{MAX_MEMBER >> 20} MiB a file or {MAX_TOTAL >> 20} MiB in all")


#: The most values a package's descriptions may hold, aliases expanded.
MAX_YAML_NODES = 100_000


def _sources(path: Path) -> tuple[list[str], list[str]]:
    """The ``source`` fields of every description (``rdf.yaml``, ``bioimageio.yaml``) in the package,
    read as plain YAML, and the names of the package's files (empty for what is not a zip)."""
    import zipfile

    import yaml

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            # every YAML file: the spec reads its description from one of several names (rdf.yaml,
            # bioimageio.yaml, model.yaml, *.model.yaml ...), and a decoy must not hide it
            rdfs = [yaml.safe_load(z.read(n)) for n in names if n.lower().endswith((".yaml", ".yml"))]
    except Exception:  # not a zip, bad YAML: load_description says which
        return [], []
    found, stack, seen = [], list(rdfs), 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_YAML_NODES:  # YAML aliases can nest a description into itself, or a billion times
            raise PackageError(f"{path}: its description holds more than {MAX_YAML_NODES} values (YAML "
                               "aliases?); a model description is a few thousand")
        if isinstance(node, dict):
            src = node.get("source")
            if isinstance(src, str):
                found.append(src)
            stack.extend(v for k, v in node.items() if k != "config")  # free-form: no file fields
        elif isinstance(node, list):
            stack.extend(node)
    return found, names


def remote_sources(path: Path) -> list[str]:
    """The URLs among the ``source`` fields of a package's descriptions."""
    return [src for src in _sources(path)[0] if src.lower().startswith(("http://", "https://"))]


def missing_files(path: Path) -> list[str]:
    """The files a package's descriptions name that it does not hold (the I/O checks that would find
    them are off: they also look things up on the network)."""
    sources, names = _sources(path)
    held = {n.rstrip("/") for n in names}
    return [src for src in sources if not src.lower().startswith(("http://", "https://"))
            and src.lstrip("./") not in held]


def _file_bytes(descr_file, path: Path, what: str) -> bytes:
    from bioimageio.spec.utils import get_reader

    source = str(getattr(descr_file, "source", ""))
    if source.lower().startswith(("http://", "https://")):
        raise PackageError(f"{path}: its {what} is named by URL ({source}); only packages that hold all their "
                           "files are imported (nothing is downloaded)")
    try:
        return get_reader(descr_file).read()
    except Exception as exc:
        raise PackageError(f"{path}: cannot read its {what} ({type(exc).__name__}: {str(exc)[:200]})") from None


def _our_network(descr, reading: Reading, path: Path) -> torch.nn.Module:
    """Our architecture, rebuilt from our code, with the package's state dict (``weights_only``)."""
    from ..models import ARCHITECTURES, build

    arch, config = reading.ours["architecture"], dict(reading.ours.get("config", {}))
    entry = descr.weights.pytorch_state_dict
    if entry is None:
        raise PackageError(f"{path}: it names our architecture {arch!r} but holds no state dict")
    declared = getattr(entry.architecture, "callable", None)
    if str(declared) != ARCHITECTURES[arch].__name__:
        raise PackageError(f"{path}: its state dict is for {declared!r}, not our {ARCHITECTURES[arch].__name__!r}")
    data = _file_bytes(entry, path, "state dict")
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        net = build(arch, **config)
        net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except Exception as exc:
        raise PackageError(f"{path}: its state dict does not load into {arch!r} "
                           f"({type(exc).__name__}: {first_line(exc)})") from None
    return net.eval()


def _torchscript_network(descr, reading: Reading, path: Path, folder: Path) -> tuple[torch.nn.Module, Path]:
    """The package's TorchScript graph behind our adapter, and the file it was written to."""
    from ..zoo.foreign import load_imported

    data = _file_bytes(descr.weights.torchscript, path, "TorchScript weights")
    script = folder / "weights_torchscript.pt"
    script.write_bytes(data)
    try:
        return load_imported(script, reading.adapter()), script
    except Exception as exc:
        raise PackageError(f"{path}: its TorchScript weights do not load "
                           f"({type(exc).__name__}: {first_line(exc)})") from None


def refuse_weights(descr, path: Path) -> PackageError:
    """Why no weights of the package can be imported, as an error to raise."""
    present = [f for f in ("pytorch_state_dict", "torchscript", "onnx", "keras_hdf5", "keras_v3",
                           "tensorflow_saved_model_bundle", "tensorflow_js") if getattr(descr.weights, f, None)]
    sd = descr.weights.pytorch_state_dict
    if sd is not None:
        arch = sd.architecture
        where = getattr(arch, "source", None) or getattr(arch, "import_from", "?")
        return PackageError(f"{path}: its weights are a state dict of {arch.callable!r} from {where}, an "
                            "architecture that is not ours: its source would have to run, which we never do; "
                            "only TorchScript weights or napari-nucleiseg architectures are imported")
    return PackageError(f"{path}: its weights are {present}: only TorchScript or napari-nucleiseg state dicts "
                        "are imported")


def _test_arrays(descr, path: Path) -> tuple[np.ndarray, np.ndarray]:
    arrays = []
    for tensor, what in ((descr.inputs[0], "test input"), (descr.outputs[0], "test output")):
        if tensor.test_tensor is None:
            raise PackageError(f"{path}: it has no {what} tensor to check it with")
        data = _file_bytes(tensor.test_tensor, path, what)
        if len(data) > MAX_TEST_TENSOR:
            raise PackageError(f"{path}: its {what} is {len(data) / 2**20:.0f} MiB; test tensors over "
                               f"{MAX_TEST_TENSOR >> 20} MiB are not run (a test image of 2048 x 2048 is enough)")
        try:
            arrays.append(np.load(io.BytesIO(data), allow_pickle=False))
        except ValueError as exc:
            raise PackageError(f"{path}: its {what} is not a .npy array ({exc})") from None
        if arrays[-1].size > MAX_TEST_VALUES:  # the network runs on it whole
            raise PackageError(f"{path}: its {what} holds {arrays[-1].size} values; test tensors over "
                               f"{MAX_TEST_VALUES} (two channels of 1024 x 1024) are not run")
    return arrays[0], arrays[1]


@torch.inference_mode()
def check_reproduces(net: torch.nn.Module, reading: Reading, descr, path: Path) -> float:
    """Our reading of the package run on its test input gives its test output (foreground[, border]
    channels); returns the largest difference. Refuses a package that our reading does not reproduce."""
    from ..zoo.foreign import to_axes
    from .content import scale_range

    raw, expected = _test_arrays(descr, path)
    try:
        x = to_axes(torch.from_numpy(raw.astype(np.float32)), reading.input_axes, "bcyx").numpy()
        want = to_axes(torch.from_numpy(expected.astype(np.float32)), reading.output_axes, "bcyx")
        got = torch.sigmoid(net(torch.from_numpy(scale_range(x, reading.percentiles))))
        want = want[:, reading.channels]
    except Exception as exc:  # weights, description and test tensors that do not fit together
        raise PackageError(f"{path}: its network does not run on its own test input as described "
                           f"({type(exc).__name__}: {first_line(exc)})") from None
    if got.shape != want.shape:
        raise PackageError(f"{path}: our reading gives maps of shape {tuple(got.shape)}, its test output "
                           f"{tuple(want.shape)}")
    diff = (got - want).abs()
    bad = float((diff > TOLERANCE + TOLERANCE * want.abs()).float().mean())
    if bad > MISMATCH_FRACTION:
        raise PackageError(f"{path}: run as we read it, it does not reproduce its own test output "
                           f"({bad:.2%} of the values differ, by up to {float(diff.max()):.3g})")
    return float(diff.max())


def _card(descr, reading: Reading, path: Path, name: str, net, fmt: str, sha: str, max_diff: float) -> dict:
    from ..zoo.catalog import DEFAULT_POSTPROCESS
    from ..zoo.foreign import ADAPTER_KEY

    ours = reading.ours or {}
    licence = ours.get("licence") or (str(descr.license) if descr.license else "")
    if "-NC" in str(descr.license or "") and "non-commercial" not in licence.lower():
        licence += ", non-commercial"  # so that model pickers flag it (``ModelEntry.description``)
    card = {
        "name": name,
        "description": f"{descr.name} (imported from bioimage.io)",
        "architecture": ours.get("architecture", "torchscript"),
        "config": {**ours.get("config", {}), "in_channels": reading.in_channels},
        "outputs": reading.outputs,
        "parameters": sum(p.numel() for p in net.parameters()),
        "licence": licence,
        "normalize": {"percentiles": list(reading.percentiles)},
        "postprocess": {**DEFAULT_POSTPROCESS, **ours.get("postprocess", {})},
        "imported": {
            "from": "bioimage.io package", "file": path.name, "sha256": sha, "package": descr.name,
            "id": str(descr.id) if descr.id else None, "format_version": descr.format_version,
            "weights": fmt, "licence": str(descr.license or ""), "authors": [a.name for a in descr.authors],
            "cite": [c.text for c in descr.cite], "test_max_difference": round(max_diff, 6),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        },
    }
    if reading.ours is None:
        card[ADAPTER_KEY] = reading.adapter()
    for key in ("sizing", "stain_signal", "postprocess_by_kind"):
        if ours.get(key):
            card[key] = ours[key]
    return card


def import_package(path, name: str | None = None):
    """Add a bioimage.io model package (``.zip``) to the user models; returns its ``ModelEntry``.

    Parameters
    ----------
    path : path
        A local package whose one output holds a nucleus foreground map (and maybe a border map;
        without one, our watershed splits nuclei at distance-transform peaks).
    name : str, optional
        The new model's name (default: the package's file name without ``.zip``).

    Raises
    ------
    errors.PackageError
        One line naming the file and why it cannot be imported; nothing is written then.
    ValueError
        For a name that is invalid or taken (``zoo.check_name``).
    """
    from ..io.writers import write_set
    from ..zoo import check_name, get_entry, save_weights
    from ..zoo.catalog import card_problem
    from ..zoo.user_models import card_writer, claimed

    path = Path(path)
    descr = load_description(path)
    reading = read_description(descr, path)
    name = name or path.name.removesuffix(".zip").removesuffix(".bioimageio")
    check_name(name)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    sha = digest.hexdigest()
    with tempfile.TemporaryDirectory(prefix="nucleiseg-import-") as tmp:
        if reading.ours is not None:
            net, fmt = _our_network(descr, reading, path), "pytorch_state_dict"
            weights = Path(tmp) / "weights.pt"
            save_weights(weights, net, reading.ours["architecture"], dict(reading.ours.get("config", {})))
        elif descr.weights.torchscript is not None:
            (net, weights), fmt = _torchscript_network(descr, reading, path, Path(tmp)), "torchscript"
        else:
            raise refuse_weights(descr, path)
        max_diff = check_reproduces(net, reading, descr, path)
        card = _card(descr, reading, path, name, net, fmt, sha, max_diff)
        problem = card_problem(card)
        if problem is not None:  # a setting of the package's own block that the zoo would skip
            raise PackageError(f"{path}: its napari_nucleiseg settings cannot be used: {problem}")
        with claimed(name) as folder:  # checked again: another import may have taken the name meanwhile
            write_set([(folder / f"{name}.pt", lambda part: shutil.copyfile(weights, part)),
                       (folder / f"{name}.json", card_writer(card))])
    return get_entry(name)
