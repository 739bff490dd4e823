"""Loading a zoo model's network onto a device (cached)."""

from __future__ import annotations

import functools
import json
import pickle

import torch

from ..device import resolve_device
from ..errors import ModelLoadError, first_line
from ..models.fold_batchnorm import fold_batchnorm
from .catalog import ModelEntry, get_entry
from .foreign import ADAPTER_KEY, load_imported
from .weights_file import load_weights_file


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float, device: str, adapter: str | None = None):
    dev = torch.device(device)
    if adapter is not None:  # a TorchScript graph imported from a bioimage.io package
        model = load_imported(path, json.loads(adapter), dev)
    else:
        model = fold_batchnorm(load_weights_file(path)[0])
    model = model.to(dev)
    if dev.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
    return model


def load_model(name: str | ModelEntry | None = "default", device=None
               ) -> tuple[torch.nn.Module, ModelEntry, torch.device]:
    """Model (eval mode, batch norm folded: for inference only, on its device), its zoo entry
    and the device used; cached.

    ``name`` may also be a ``ModelEntry`` (e.g. from ``ModelEntry.for_kind``).
    """
    entry = name if isinstance(name, ModelEntry) else get_entry(name)
    dev = resolve_device(device)
    try:
        adapter = entry.card.get(ADAPTER_KEY)
        model = _cached(str(entry.weights), entry.weights.stat().st_mtime, str(dev),
                        json.dumps(adapter, sort_keys=True) if adapter is not None else None)
    except (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise ModelLoadError(f"{entry.weights}: cannot load the weights of model {entry.name!r} "
                             f"({_why(exc)})") from None
    return model, entry, dev


def _why(exc: BaseException) -> str:
    """What is wrong with a weights file, in a few words (never torch's advice to turn its safe loading
    off, which would run the code a hostile file holds)."""
    text = first_line(exc) or "no detail"
    if "weights_only" in text or "Weights only load failed" in text:
        return "not a weights file this plugin reads: it holds Python objects beyond tensors, or is corrupt"
    return f"{type(exc).__name__}: {text}"
