"""The model zoo: shipped weights with model cards, and the user's own (fine-tuned) models."""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

from .device import resolve_device
from .models import build

SHIPPED_DIR = Path(__file__).parent / "weights"
DEFAULT_POSTPROCESS = {"threshold": 0.5, "border_threshold": 0.5, "min_size": 8, "min_mean_foreground": 0.0}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def user_models_dir() -> Path:
    """Folder of user models: ``$NUCLEISEG_USER_DIR`` or the platform's user data folder."""
    env = os.environ.get("NUCLEISEG_USER_DIR")
    if env:
        return Path(env) / "models"
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-nucleiseg", appauthor=False)) / "models"


@dataclass(frozen=True)
class ModelEntry:
    """A zoo model: its name, weights file, card and whether the user made it."""

    name: str
    weights: Path
    card: dict
    user: bool

    @property
    def description(self) -> str:
        """One line for model pickers: description and validation DSB score."""
        d = self.card.get("description", self.card.get("architecture", ""))
        v = self.card.get("validation", {}).get("dsb_score")
        tag = " [user]" if self.user else ""
        kinds = sorted(self.card.get("specialists", {}))
        via = f"; {' and '.join(kinds)} images go to its specialists" if kinds else ""
        return f"{d}{tag}{via}" + (f" (val DSB {v:.3f})" if v is not None else "")


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


def load_weights_file(path) -> tuple[torch.nn.Module, dict]:
    """Rebuild a model from a weights file written by ``train.save_weights`` (float32, eval mode)."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    model = build(blob["architecture"], **blob.get("config", {}))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
    return model.eval(), blob


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float, device: str):
    model, _ = load_weights_file(path)
    dev = torch.device(device)
    model = model.to(dev)
    if dev.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


def load_model(name: "str | ModelEntry | None" = "default", device=None
               ) -> tuple[torch.nn.Module, ModelEntry, torch.device]:
    """Model (eval mode, on its device), its zoo entry and the device used; cached.

    ``name`` may also be a ``ModelEntry`` (e.g. from ``for_kind``).
    """
    entry = name if isinstance(name, ModelEntry) else get_entry(name)
    dev = resolve_device(device)
    model = _cached(str(entry.weights), entry.weights.stat().st_mtime, str(dev))
    return model, entry, dev


def for_kind(entry: ModelEntry, kind: str | None) -> ModelEntry:
    """The model that segments images of ``kind`` for ``entry``.

    A card may name specialists by image kind (``"specialists": {"stained": "resunet32-stained"}``,
    kinds of ``preprocess.image_kind``); any other kind, or a specialist that is not installed,
    gets ``entry`` itself.
    """
    name = entry.card.get("specialists", {}).get(kind) if kind else None
    if name:
        for e in list_models():
            if e.name == name:
                return e
    return entry


def weight_files(entry: ModelEntry) -> list[Path]:
    """Every weights file a model's results depend on: its own, then its specialists'."""
    kinds = sorted(entry.card.get("specialists", {}))
    files = [entry.weights] + [for_kind(entry, k).weights for k in kinds]
    return list(dict.fromkeys(files))


def postprocess_settings(entry: ModelEntry) -> dict:
    """The post-processing settings tuned for this model (falls back to defaults)."""
    return {**DEFAULT_POSTPROCESS, **entry.card.get("postprocess", {})}


def target_diameter(entry: ModelEntry) -> float | None:
    """Nucleus diameter (pixels) the model segments best (card ``sizing.target_diameter``).

    ``segment()`` shrinks images whose nuclei are larger (``sizing``); None: never rescale.
    """
    value = entry.card.get("sizing", {}).get("target_diameter")
    return float(value) if value else None


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a valid, unused model name."""
    if not _NAME_RE.match(name or ""):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '-', '_' or '.' (max 64)")
    if any(e.name == name for e in list_models()):
        raise ValueError(f"a model named {name!r} exists already; choose another name")


def save_user_model(name: str, model: torch.nn.Module, architecture: str, config: dict, card: dict) -> ModelEntry:
    """Save a new user model (never overwrites any model) and return its entry."""
    from .train import save_weights

    check_name(name)
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    card = {**card, "name": name, "architecture": architecture, "config": config}
    save_weights(folder / f"{name}.pt", model, architecture, config)
    tmp = folder / f".{name}.json.part"
    tmp.write_text(json.dumps(card, indent=1))
    tmp.replace(folder / f"{name}.json")
    return get_entry(name)


def delete_user_model(name: str) -> None:
    """Delete a user model (shipped models cannot be deleted)."""
    e = get_entry(name)
    if not e.user:
        raise ValueError(f"{name!r} is a shipped model and cannot be deleted")
    e.weights.unlink(missing_ok=True)
    e.weights.with_suffix(".json").unlink(missing_ok=True)


def rename_user_model(old: str, new: str) -> ModelEntry:
    """Rename a user model."""
    e = get_entry(old)
    if not e.user:
        raise ValueError(f"{old!r} is a shipped model and cannot be renamed")
    check_name(new)
    folder = e.weights.parent
    card = {**e.card, "name": new}
    (folder / f"{new}.json").write_text(json.dumps(card, indent=1))
    e.weights.rename(folder / f"{new}.pt")
    e.weights.with_suffix(".json").unlink()
    return get_entry(new)


def export_model(name: str, path) -> Path:
    """Write a model to one portable file (weights + card inside)."""
    e = get_entry(name)
    blob = torch.load(e.weights, map_location="cpu", weights_only=False)
    blob["card"] = e.card
    path = Path(path)
    torch.save(blob, path)
    return path


def import_model(path, name: str | None = None) -> ModelEntry:
    """Add a model file written by ``export_model`` to the user models."""
    blob = torch.load(path, map_location="cpu", weights_only=False)
    if "architecture" not in blob or "state_dict" not in blob:
        raise ValueError(f"{path}: not a napari-nucleiseg model file")
    card = blob.pop("card", {})
    name = name or card.get("name") or Path(path).stem
    check_name(name)
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, folder / f"{name}.pt")
    (folder / f"{name}.json").write_text(json.dumps({**card, "name": name}, indent=1))
    return get_entry(name)
