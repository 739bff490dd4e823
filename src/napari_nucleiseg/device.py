"""Device choice and the fastest safe numeric mode for each device."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from .errors import OptionError


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` picks CUDA, then MPS, then CPU; otherwise the named device.

    Raises
    ------
    errors.OptionError
        If the requested device is unknown or not available on this machine (also a ValueError).
    """
    text = None if device is None else str(device).strip().lower()
    if text is None or text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        dev = None
    if dev is None or dev.type not in ("cpu", "cuda", "mps"):  # torch also names meta, xpu, hpu...
        raise OptionError(f"device {device!r}: use auto, cpu, cuda, cuda:N or mps")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise OptionError("CUDA was requested but no CUDA GPU is available (is a CUDA build of torch installed?)")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise OptionError("MPS was requested but is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise OptionError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return dev


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_has_bf16() -> bool:
    """True when the CPU computes bfloat16 natively (AVX512-BF16 or AMX), where autocast pays off."""
    return not cpu_flags().isdisjoint({"avx512_bf16", "amx_bf16"})


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype to use on ``device`` (None: plain float32)."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def describe(device: torch.device) -> str:
    """Human-readable device name, e.g. ``"CUDA: NVIDIA H100"`` or ``"CPU (2 threads, bf16)"``."""
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple MPS"
    mode = "bf16" if autocast_dtype(device) else "fp32"
    return f"CPU ({torch.get_num_threads()} threads, {mode})"
