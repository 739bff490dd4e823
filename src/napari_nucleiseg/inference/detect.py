"""Instance models (detectors, e.g. ``models.detection.MaskRCNNLite``): tiled detection whose
tile seams find each nucleus once, and the nucleus-size rescaling of ``sizing`` for detections."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from ..device import autocast_dtype
from ..errors import Cancelled
from ..options import parse_diameter
from .paste import paste
from .predict import tile_starts
from .sizing import AUTO, shrink, shrunk_shape, within_shape, zoom_for


def is_instance_model(model) -> bool:
    """Whether ``model`` outputs instances (boxes, scores, masks) rather than maps."""
    return bool(getattr(model, "outputs_instances", False))


@dataclass
class Detections:
    """Nuclei found in one image: ``boxes`` ``(K, 4)`` (x1, y1, x2, y2 pixels), ``scores`` ``(K,)``,
    ``masks`` ``(K, m, m)`` soft masks within the boxes (float32 NumPy arrays)."""

    boxes: np.ndarray
    scores: np.ndarray
    masks: np.ndarray

    @classmethod
    def empty(cls, mask_size: int = 28) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32),
                   np.zeros((0, mask_size, mask_size), np.float32))

    @classmethod
    def join(cls, parts: list[Detections]) -> Detections:
        if not parts:
            return cls.empty()
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in ("boxes", "scores", "masks")))

    def take(self, index) -> Detections:
        return Detections(self.boxes[index], self.scores[index], self.masks[index])

    def scaled(self, sy: float, sx: float) -> Detections:
        """The same nuclei in an image ``sy`` x ``sx`` times larger (masks are box-relative)."""
        return Detections(self.boxes * np.array([sx, sy, sx, sy], np.float32), self.scores, self.masks)

    def median_diameter(self, threshold: float) -> float | None:
        """Median equivalent-circle diameter of the nuclei scored at least ``threshold`` (mask
        area: box area times the share of the mask at or above 0.5); None when there are none."""
        keep = self.scores >= threshold
        if not keep.any():
            return None
        b = self.boxes[keep]
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) * (self.masks[keep] >= 0.5).mean(axis=(1, 2))
        return float(np.sqrt(4.0 * np.median(area) / np.pi))


def _owned(starts: list[int], tile: int, length: int) -> list[tuple[float, float]]:
    """The part ``[lo, hi)`` of each tile that owns the nuclei centred in it: tiles split their
    overlaps at the middle, so each point of the image belongs to exactly one tile."""
    out = []
    for i, s in enumerate(starts):
        lo = 0.0 if i == 0 else (s + starts[i - 1] + tile) / 2
        hi = float(length) if i == len(starts) - 1 else (starts[i + 1] + s + tile) / 2
        out.append((lo, hi))
    return out


@torch.inference_mode()
def detect_tile(model, tile: np.ndarray, device: torch.device) -> Detections:
    """Detections of one prepared tile ``(Y, X)`` or ``(C, Y, X)`` (bf16 autocast where it helps)."""
    x = torch.from_numpy(np.ascontiguousarray(tile, dtype=np.float32))
    x = (x[None] if x.ndim == 3 else x[None, None]).to(device)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    amp = autocast_dtype(device)
    with torch.autocast(device.type, dtype=amp) if amp is not None else nullcontext():
        out = model(x)[0]
    return Detections(*(out[k].float().cpu().numpy() for k in ("boxes", "scores", "masks")))


def detect(model, image: np.ndarray, device: torch.device, tile: int = 1024, overlap: int = 64,
           progress: Callable[[int, int], None] | None = None,
           cancel: Callable[[], bool] | None = None) -> Detections:
    """Detections of a prepared image, tile by tile.

    Tiles of ``tile`` pixels overlap by ``overlap``; of the nuclei found in two tiles, only the
    tile owning the box centre keeps its detection (``_owned``), so a nucleus on a seam is found
    once (when the overlap is wider than a nucleus). ``progress(done, total)`` after each tile;
    ``cancel()`` returning True raises ``errors.Cancelled``.
    """
    h, w = image.shape[-2:]
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    own_y, own_x = _owned(ys, tile, h), _owned(xs, tile, w)
    parts, done = [], 0
    for y0, (ylo, yhi) in zip(ys, own_y):
        for x0, (xlo, xhi) in zip(xs, own_x):
            if cancel is not None and cancel():
                raise Cancelled()
            d = detect_tile(model, image[..., y0:y0 + tile, x0:x0 + tile], device)
            d.boxes += np.array([x0, y0, x0, y0], np.float32)
            cx, cy = (d.boxes[:, 0] + d.boxes[:, 2]) / 2, (d.boxes[:, 1] + d.boxes[:, 3]) / 2
            parts.append(d.take((cx >= xlo) & (cx < xhi) & (cy >= ylo) & (cy < yhi)))
            done += 1
            if progress is not None:
                progress(done, len(ys) * len(xs))
    out = Detections.join(parts)
    return out.take(np.argsort(-out.scores, kind="stable"))


def sized_detection(detect_fn: Callable[[np.ndarray], Detections], image: np.ndarray, threshold: float,
                    target: float | None, diameter: float | str | None = AUTO) -> tuple[Detections, float]:
    """Detections of ``image`` (in its own pixels), found at the scale that suits its nuclei.

    As ``sizing.sized_prediction``: with ``diameter="auto"`` a first pass measures the median
    nucleus diameter (``Detections.median_diameter`` of the detections scored ``threshold`` or
    more); when it is above the model's ``target`` (``sizing.zoom_for``) the image is shrunk,
    detected again, and the boxes are scaled back (the masks are box-relative, so labels are
    pasted at full resolution). Returns the detections and the zoom (1.0: not rescaled).
    """
    diameter = parse_diameter(diameter)
    dets = None
    if diameter == AUTO:
        dets = detect_fn(image)
        diameter = dets.median_diameter(threshold) if target else None
    zoom = within_shape(zoom_for(diameter, target), image.shape)
    if zoom < 1.0:
        small = shrunk_shape(image.shape[-2:], zoom)
        h, w = image.shape[-2:]
        dets = detect_fn(shrink(image, zoom)).scaled(h / small[0], w / small[1])
    elif dets is None:
        dets = detect_fn(image)
    return dets, zoom


def instance_maps(dets: Detections, shape: tuple[int, int], post: dict) -> tuple[dict, np.ndarray, np.ndarray]:
    """The maps, labels and per-label scores of detections (``paste.paste`` with the settings'
    ``threshold``, the lowest score, and ``min_size``): ``foreground`` is the union of the soft
    masks; an instance model has no border map and no TTA variance (zeros)."""
    labels, prob, scores = paste(dets.boxes, dets.scores, dets.masks, shape,
                                 threshold=float(post.get("threshold", 0.5)), min_size=int(post.get("min_size", 0)))
    zeros = np.zeros(shape, np.float32)
    return {"foreground": prob, "border": zeros, "variance": zeros}, labels, scores


def detect_instances(model, image: np.ndarray, device: torch.device, post: dict | None = None,
                     tile: int = 1024, overlap: int = 64) -> tuple[dict, np.ndarray]:
    """Maps and labels of a prepared image from an instance model, at the image's own scale
    (as ``evaluation.evaluate.predict_instances`` for map models)."""
    maps, labels, _ = instance_maps(detect(model, image, device, tile, overlap), image.shape[-2:], post or {})
    return maps, labels
