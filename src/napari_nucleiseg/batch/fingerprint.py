"""Hashes that decide whether an earlier result can be reused: weights, options, inputs."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os

from ..errors import OptionError
from .options import BatchOptions


def sha256_of(path) -> str:
    """SHA-256 of a file's content, read now (never cached)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@functools.lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    return sha256_of(path)


def file_sha256(path) -> str:
    """SHA-256 of a file (cached per path, size and modification time)."""
    st = os.stat(path)
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def weights_sha256(model="default") -> str:
    """SHA-256 of the weights a zoo model (a name or a ``zoo.ModelEntry``) depends on.

    The weights file's own hash; for a model with specialists (``ModelEntry.weight_files``), the hash
    of the files' names and hashes, one per line.
    """
    from .. import zoo

    entry = model if isinstance(model, zoo.ModelEntry) else zoo.get_entry(model)
    files = entry.weight_files()
    if len(files) == 1:
        return file_sha256(files[0])
    lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def options_fingerprint(options: BatchOptions, model_sha256: str, target_diameter: float | None = None,
                        legacy: bool = False) -> str:
    """Short hash of everything that changes an image's outputs: the options (``run_batch`` spells
    out the card's post-processing in them), the exact weights and the card's training nucleus
    size (``ModelEntry.target_diameter``); a finished image is only reused when all are unchanged."""
    fields = dataclasses.asdict(options)
    if not legacy:  # ``legacy``: as versions before 2026-12-07 hashed it, with the device's name
        fields["device"] = numeric_mode(options.device)
    blob = json.dumps({"options": fields, "weights": model_sha256, "target_diameter": target_diameter},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def numeric_mode(device) -> str:
    """What a device changes in the outputs: its type and autocast dtype (``"cpu/bfloat16"``), so
    ``auto`` and the device it resolves to, or ``cuda`` and ``cuda:1``, reuse each other's results.
    A device this machine lacks (a Dask run's workers may have it) keeps its type alone."""
    from ..device import autocast_dtype, resolve_device

    try:
        dev = resolve_device(device)
    except OptionError:
        return str(device).strip().lower().split(":")[0]
    dtype = autocast_dtype(dev)
    return f"{dev.type}/{str(dtype).removeprefix('torch.') if dtype else 'float32'}"


def source_stamp(path) -> dict:
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
