"""The weights-file format: an fp16 state dict with the architecture needed to rebuild it."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models import build


def weights_writer(model, arch: str, config: dict, extra: dict | None = None):
    """``write(tmp)`` of a compact fp16 state dict with the architecture needed to rebuild it (for
    ``io.writers.write_set``)."""
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    blob = {"architecture": arch, "config": config, "state_dict": sd, **(extra or {})}
    return lambda tmp: torch.save(blob, tmp)


def save_weights(path, model, arch: str, config: dict, extra: dict | None = None) -> None:
    """Save a compact fp16 state dict with the architecture needed to rebuild it (atomically, through
    a temporary file of its own: two saves at once never share one)."""
    from ..io.writers import write_set

    write_set([(Path(path), weights_writer(model, arch, config, extra))])


def read_blob(path) -> dict:
    """The raw content of a weights file, read with ``weights_only=True`` (no code runs)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_weights_file(path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from a weights file written by ``save_weights`` (float32, eval mode)."""
    blob = read_blob(path)
    model = build(blob["architecture"], **blob.get("config", {}))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    return model.eval(), blob
