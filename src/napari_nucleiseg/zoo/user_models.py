"""The user's own models (fine-tuned or imported): save, rename, delete, export, import."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch

from .catalog import ModelEntry, get_entry, list_models, user_models_dir
from .weights_file import read_blob, save_weights

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a valid, unused model name."""
    if not _NAME_RE.match(name or ""):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '-', '_' or '.' (max 64)")
    if any(e.name == name for e in list_models()):
        raise ValueError(f"a model named {name!r} exists already; choose another name")


def _write_card(folder: Path, name: str, card: dict) -> None:
    tmp = folder / f".{name}.json.part"
    tmp.write_text(json.dumps(card, indent=1))
    tmp.replace(folder / f"{name}.json")


def save_user_model(name: str, model: torch.nn.Module, architecture: str, config: dict, card: dict) -> ModelEntry:
    """Save a new user model (never overwrites any model) and return its entry."""
    check_name(name)
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    card = {**card, "name": name, "architecture": architecture, "config": config}
    save_weights(folder / f"{name}.pt", model, architecture, config)
    _write_card(folder, name, card)
    return get_entry(name)


def _user_entry(name: str, verb: str) -> ModelEntry:
    e = get_entry(name)
    if not e.user:
        raise ValueError(f"{name!r} is a shipped model and cannot be {verb}")
    return e


def delete_user_model(name: str) -> None:
    """Delete a user model (shipped models cannot be deleted)."""
    e = _user_entry(name, "deleted")
    e.weights.unlink(missing_ok=True)
    e.weights.with_suffix(".json").unlink(missing_ok=True)


def rename_user_model(old: str, new: str) -> ModelEntry:
    """Rename a user model."""
    e = _user_entry(old, "renamed")
    check_name(new)
    folder = e.weights.parent
    _write_card(folder, new, {**e.card, "name": new})
    e.weights.rename(folder / f"{new}.pt")
    e.weights.with_suffix(".json").unlink()
    return get_entry(new)


def export_model(name: str, path) -> Path:
    """Write a model to one portable file (weights + card inside)."""
    e = get_entry(name)
    blob = read_blob(e.weights)
    blob["card"] = e.card
    path = Path(path)
    torch.save(blob, path)
    return path


def import_model(path, name: str | None = None) -> ModelEntry:
    """Add a model file written by ``export_model`` to the user models (read without running code)."""
    blob = read_blob(path)
    if "architecture" not in blob or "state_dict" not in blob:
        raise ValueError(f"{path}: not a napari-nucleiseg model file")
    card = blob.pop("card", {})
    name = name or card.get("name") or Path(path).stem
    check_name(name)
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, folder / f"{name}.pt")
    _write_card(folder, name, {**card, "name": name})
    return get_entry(name)
