"""The user's own models (fine-tuned or imported): save, rename, delete, export, import."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import time
from pathlib import Path

import torch

from ..errors import first_line
from ..io.writers import write_set
from .catalog import DEFAULT_ALIAS, ModelEntry, card_problem, get_entry, list_models, user_models_dir
from .foreign import ADAPTER_KEY
from .weights_file import load_weights_file, read_blob, weights_writer

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a valid, unused model name."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ValueError(f"invalid model name {name!r}: use letters, digits, '-', '_' or '.' (max 64)")
    if name.casefold() == DEFAULT_ALIAS:
        raise ValueError(f"invalid model name {name!r}: it names the default model; choose another name")
    taken = next((e.name for e in list_models() if e.name.casefold() == name.casefold()), None)
    if taken is not None:  # ignoring case: on some disks the two names are one file
        raise ValueError(f"a model named {taken!r} exists already; choose another name")


#: The lock file of the user-models folder (``claimed``).
LOCK_NAME = ".models.lock"

#: A temporary file older than this was left by a save that was killed (a live save takes seconds).
STALE_PART_S = 3600.0


def remove_stale_parts(folder: Path) -> int:
    """Delete ``*.part`` files that a killed save left in the user-models folder; returns how many."""
    n = 0
    for p in Path(folder).glob("*.part"):
        try:
            if time.time() - p.stat().st_mtime > STALE_PART_S:
                p.unlink()
                n += 1
        except OSError:
            continue
    return n


def _write_card(folder: Path, name: str, card: dict) -> None:
    tmp = folder / f".{name}.json.part"
    tmp.write_text(json.dumps(card, indent=1))
    tmp.replace(folder / f"{name}.json")


@contextlib.contextmanager
def claimed(name: str):
    """Hold the user-models folder while ``name`` is checked and its files written, so that two
    processes saving or importing a model of one name at once cannot both take it (``check_name``
    refuses the second). Yields the folder."""
    from filelock import FileLock

    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    with FileLock(str(folder / LOCK_NAME)):
        check_name(name)
        yield folder


def card_writer(card: dict):
    """``write(tmp)`` of a card (for ``io.writers.write_set``)."""
    return lambda tmp: Path(tmp).write_text(json.dumps(card, indent=1))


def save_user_model(name: str, model: torch.nn.Module, architecture: str, config: dict, card: dict) -> ModelEntry:
    """Save a new user model (never overwrites any model; weights and card appear together) and
    return its entry."""
    with claimed(name) as folder:
        remove_stale_parts(folder)
        card = {**card, "name": name, "architecture": architecture, "config": config}
        write_set([(folder / f"{name}.pt", weights_writer(model, architecture, config)),
                   (folder / f"{name}.json", card_writer(card))])
    return get_entry(name)


def _user_entry(name: str, verb: str) -> ModelEntry:
    e = get_entry(name)
    if not e.user:
        raise ValueError(f"{name!r} is a shipped model and cannot be {verb}")
    return e


def delete_user_model(name: str) -> None:
    """Delete a user model (shipped models cannot be deleted, nor one that another user model hands
    images to: a model saved later under its name would silently take them over)."""
    e = _user_entry(name, "deleted")
    users = [o.name for o in list_models() if o.user and o.name != e.name
             and e.name in o.card.get("specialists", {}).values()]
    if users:
        raise ValueError(f"{name!r} segments images for {', '.join(map(repr, users))} (its specialist): "
                         "delete those first")
    e.weights.unlink(missing_ok=True)
    e.weights.with_suffix(".json").unlink(missing_ok=True)


def rename_user_model(old: str, new: str) -> ModelEntry:
    """Rename a user model."""
    e = _user_entry(old, "renamed")
    with claimed(new) as folder:
        _write_card(folder, new, {**e.card, "name": new})
        e.weights.rename(folder / f"{new}.pt")
        e.weights.with_suffix(".json").unlink()
    for other in list_models():  # models fine-tuned from it route images to it by name
        if other.user and other.name != new and (old in other.card.get("specialists", {}).values()
                                                 or other.card.get("parent") == old):
            card = {**other.card, "specialists": {k: new if v == old else v
                                                  for k, v in other.card.get("specialists", {}).items()}}
            if card.get("parent") == old:
                card["parent"] = new
            _write_card(other.weights.parent, other.name, card)
    return get_entry(new)


def export_model(name: str, path) -> Path:
    """Write a model to one portable file (weights + card inside)."""
    e = get_entry(name)
    if ADAPTER_KEY in e.card:
        raise ValueError(f"{e.weights}: model {name!r} is a TorchScript graph imported from a bioimage.io "
                         "package; keep that package instead")
    try:
        blob = read_blob(e.weights)
    except Exception as exc:  # torch raises many types for a damaged file
        detail = first_line(exc) or type(exc).__name__
        raise ValueError(f"{e.weights}: the weights of {name!r} cannot be read ({detail})") from None
    blob["card"] = e.card
    path = Path(path)
    write_set([(path, lambda tmp: torch.save(blob, tmp))])
    return path


def import_model(path, name: str | None = None) -> ModelEntry:
    """Add a model file written by ``export_model`` to the user models.

    The file is read without running code (``weights_only``) and its network rebuilt before it is
    copied, so that only a model that loads joins the user models.

    Raises
    ------
    ValueError
        One line naming the file, for anything that is not a loadable model file.
    """
    try:
        _, blob = load_weights_file(path)
    except Exception as exc:  # torch and pickle raise many types for foreign or hostile files
        detail = first_line(exc) or type(exc).__name__
        raise ValueError(f"{path}: not a loadable napari-nucleiseg model file ({detail})") from None
    card = blob.pop("card", {})
    if not isinstance(card, dict):
        raise ValueError(f"{path}: its model card is not an object")
    name = name or card.get("name") or Path(path).stem
    check_name(name)
    card = {**card, "name": name}
    if (problem := card_problem(card)) is not None:
        raise ValueError(f"{path}: its model card cannot be used: {problem}")
    with claimed(name) as folder:
        remove_stale_parts(folder)
        write_set([(folder / f"{name}.pt", lambda tmp: shutil.copyfile(path, tmp)),
                   (folder / f"{name}.json", card_writer(card))])
    return get_entry(name)
