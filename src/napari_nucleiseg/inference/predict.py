"""Tiled inference with overlap, optional test-time augmentation, bounded memory."""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import nullcontext

import numpy as np
import torch

from ..device import autocast_dtype
from ..errors import Cancelled, OptionError


def _check_overlap(tile: int, overlap: int) -> None:
    if not 0 <= overlap < tile:
        raise OptionError(f"overlap {overlap}: must be 0 or more and smaller than the tile ({tile})")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``, the
    last one flush with the end (the detector's tiling; maps use ``tile_layout``).

    Raises
    ------
    errors.OptionError
        Unless ``0 <= overlap < tile``.
    """
    _check_overlap(tile, overlap)
    if length <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def tile_layout(length: int, tile: int, overlap: int, multiple: int = 32) -> tuple[int, list[int]]:
    """``(size, starts)``: the fewest tiles of at most ``tile`` pixels that cover ``length`` with
    at least ``overlap`` between neighbours, all of one size (a multiple of ``multiple`` unless
    that passes ``tile``), evenly spaced.

    A 2048-pixel side with ``tile=1024`` is 3 tiles of 736 pixels, not 3 tiles of 1024 (2.25x the
    pixels in 2D); a side no longer than ``tile`` is one tile of ``length``. Raises
    ``errors.OptionError`` unless ``0 <= overlap < tile``.
    """
    _check_overlap(tile, overlap)
    if length <= tile:
        return length, [0]
    n = math.ceil((length - overlap) / (tile - overlap))
    size = math.ceil((length + (n - 1) * overlap) / n)
    size = min(tile, math.ceil(size / multiple) * multiple)
    return size, [round(i * (length - size) / (n - 1)) for i in range(n)]


def _blend_window(h: int, w: int, ramp: int) -> np.ndarray:
    """Weights that fall linearly to near zero over ``ramp`` pixels at tile edges."""
    def ramp1d(n):
        r = np.ones(n, np.float32)
        k = min(ramp, n // 2)
        if k > 0:
            edge = (np.arange(k, dtype=np.float32) + 1) / (k + 1)
            r[:k] = edge
            r[n - k:] = edge[::-1]
        return r

    return np.outer(ramp1d(h), ramp1d(w))


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """k-th of the 8 flips/rotations (k < 4: rotations, k >= 4: transposed first)."""
    if k >= 4:
        x = x.transpose(-1, -2)
    return torch.rot90(x, k % 4, dims=(-2, -1))


def _undihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    x = torch.rot90(x, -(k % 4), dims=(-2, -1))
    if k >= 4:
        x = x.transpose(-1, -2)
    return x


@torch.inference_mode()
def _predict_tile(model, tile: np.ndarray, device, tta: bool) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid probabilities (2, h, w) for one tile: mean and, with TTA, variance over the 8 views.

    Views run one at a time: transposed views of a non-square tile have another shape,
    and memory stays that of one tile.
    """
    x = torch.from_numpy(np.ascontiguousarray(tile))
    x = (x[None] if x.ndim == 3 else x[None, None]).to(device)
    amp = autocast_dtype(device)
    probs = []
    for k in range(8) if tta else range(1):
        view = _dihedral(x, k)
        if device.type == "cpu":
            view = view.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext():
            logits = model(view)
        probs.append(_undihedral(torch.sigmoid(logits.float()), k)[0])
    stack = torch.stack(probs)
    mean = stack.mean(0).cpu().numpy()
    var = stack.var(0, unbiased=False).cpu().numpy() if tta else np.zeros_like(mean)
    return mean, var


def predict_maps(
    model: torch.nn.Module,
    image: np.ndarray,
    device: torch.device,
    tile: int = 1024,
    overlap: int = 64,
    tta: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> dict[str, np.ndarray]:
    """Foreground, border and TTA-variance maps for a prepared 2D image.

    Parameters
    ----------
    model : torch.nn.Module
        A zoo model in eval mode on ``device``.
    image : numpy.ndarray
        float32 ``(Y, X)`` from ``preprocess.prepare``.
    tile, overlap : int
        Largest tile edge and smallest overlap in pixels (``tile_layout``); memory is bounded
        by the tile, not the image.
    tta : bool
        Average the 8 flips/rotations (8x slower); also gives a disagreement map.
    progress : callable, optional
        ``progress(done, total)`` after each tile.
    cancel : callable, optional
        Checked before each tile; when it returns True, ``Cancelled`` is raised.

    Returns
    -------
    dict
        ``foreground``, ``border``: float32 probabilities (no ``border`` for a network with a
        foreground output alone, e.g. one imported from bioimage.io; ``distance`` for one with
        three); ``variance``: float32 TTA variance of the foreground (zeros without TTA).
    """
    h, w = image.shape[-2:]
    th, ys = tile_layout(h, tile, overlap)
    tw, xs = tile_layout(w, tile, overlap)
    total = len(ys) * len(xs)
    acc = n = None
    weight = np.zeros((h, w), np.float32)
    done = 0
    for y0 in ys:
        for x0 in xs:
            if cancel is not None and cancel():
                raise Cancelled()
            y1, x1 = y0 + th, x0 + tw
            mean, var = _predict_tile(model, image[..., y0:y1, x0:x1], device, tta)
            if acc is None:
                n = len(mean)  # without TTA the variance is zero: no plane is kept for it
                acc = np.zeros((n + tta, h, w), np.float32)
            # neighbours cross-fade over the whole overlap: each pixel leans on the tile that
            # sees more around it
            win = _blend_window(y1 - y0, x1 - x0, overlap) if total > 1 else 1.0
            acc[:n, y0:y1, x0:x1] += mean * win
            if tta:
                acc[n, y0:y1, x0:x1] += var[0] * win
            weight[y0:y1, x0:x1] += win
            done += 1
            if progress is not None:
                progress(done, total)
    acc /= weight
    # np.zeros leaves untouched pages to the system's zero page: an unread variance costs no memory
    maps = {"foreground": acc[0], "variance": acc[n] if tta else np.zeros((h, w), np.float32)}
    if n > 1:  # a model imported with a foreground map alone has no border
        maps["border"] = acc[1]
    if n > 2:
        maps["distance"] = acc[2]
    return maps


def uncertainty_map(foreground: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Per-pixel uncertainty in [0, 1]: binary entropy of the foreground probability plus TTA spread.

    Without TTA the variance is zero and this is the predictive entropy (1 at p = 0.5).
    """
    p = np.clip(foreground, 1e-6, 1 - 1e-6)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return np.clip(entropy + 2.0 * np.sqrt(variance), 0.0, 1.0).astype(np.float32)
