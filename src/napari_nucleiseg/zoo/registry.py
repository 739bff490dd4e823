"""Which models exist (shipped first, then the user's), looking them up and loading them."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import torch

from ..device import resolve_device
from .entry import ModelEntry
from .user_models import user_models_dir
from .weights_file import load_weights_file

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "weights"


def _entries(folder: Path, user: bool) -> list[ModelEntry]:
    out = []
    if not folder.is_dir():
        return out
    for card_path in sorted(folder.glob("*.json")):
        weights = card_path.with_suffix(".pt")
        if not weights.exists():
            continue
        try:
            card = json.loads(card_path.read_text())
        except (OSError, ValueError):
            continue
        out.append(ModelEntry(card.get("name", card_path.stem), weights, card, user))
    return out


def list_models() -> list[ModelEntry]:
    """All models: shipped first (default model first), then user models."""
    shipped = _entries(SHIPPED_DIR, user=False)
    shipped.sort(key=lambda e: (not e.card.get("default", False), e.name))
    return shipped + _entries(user_models_dir(), user=True)


def default_model_name() -> str:
    """Name of the shipped model marked ``default`` in its card."""
    models = list_models()
    if not models:
        raise FileNotFoundError(f"no model weights found in {SHIPPED_DIR}")
    return models[0].name


def get_entry(name: str | None = "default") -> ModelEntry:
    """Look up a model by name (``"default"`` or None: the default model)."""
    if name in (None, "default"):
        name = default_model_name()
    for e in list_models():
        if e.name == name:
            return e
    known = ", ".join(e.name for e in list_models())
    raise KeyError(f"unknown model {name!r}; available: {known}")


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float, device: str):
    model, _ = load_weights_file(path)
    dev = torch.device(device)
    model = model.to(dev)
    if dev.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


def load_model(name: str | ModelEntry | None = "default", device=None
               ) -> tuple[torch.nn.Module, ModelEntry, torch.device]:
    """Model (eval mode, on its device), its zoo entry and the device used; cached.

    ``name`` may also be a ``ModelEntry`` (e.g. from ``ModelEntry.for_kind``).
    """
    entry = name if isinstance(name, ModelEntry) else get_entry(name)
    dev = resolve_device(device)
    model = _cached(str(entry.weights), entry.weights.stat().st_mtime, str(dev))
    return model, entry, dev
