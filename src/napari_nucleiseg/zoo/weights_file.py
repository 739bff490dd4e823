"""The weights-file format: an fp16 state dict with the architecture needed to rebuild it."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models import build


def save_weights(path, model, arch: str, config: dict, extra: dict | None = None) -> None:
    """Save a compact fp16 state dict with the architecture needed to rebuild it (atomically)."""
    sd = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    torch.save({"architecture": arch, "config": config, "state_dict": sd, **(extra or {})}, tmp)
    tmp.replace(path)


def read_blob(path) -> dict:
    """The raw content of a weights file, read with ``weights_only=True`` (no code runs)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_weights_file(path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from a weights file written by ``save_weights`` (float32, eval mode)."""
    blob = read_blob(path)
    model = build(blob["architecture"], **blob.get("config", {}))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    return model.eval(), blob
