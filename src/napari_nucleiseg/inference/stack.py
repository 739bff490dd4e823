"""Stacks: segment a 2D image or the planes of a ``(Z, Y, X[, C])`` stack, the one loop every
entry point uses; labels stay unique across planes."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..errors import Cancelled, InvalidImageError
from ..memory import check_fits
from ..options import SegmentOptions
from .checks import MIN_SIDE, single_channel_dropped
from .pipeline import Segmentation, segment


def is_stack(image: np.ndarray, channel: int | None = None) -> bool:
    """True for ``(Z, Y, X)`` or ``(Z, Y, X, C)`` data.

    A 3D array is a stack unless its last axis holds colour (3 or 4) or two channels
    (``(Y, X, 2)``, which ``segment`` refuses without a ``channel``); with a nucleus ``channel``
    chosen, a 3D array is ``(Y, X, C)``.
    """
    if channel is not None:
        return image.ndim == 4
    return image.ndim == 4 or (image.ndim == 3 and image.shape[-1] not in (2, 3, 4))


def combine_planes(results: list[Segmentation], planes: list[int] | None = None) -> Segmentation:
    """Stack per-plane results into one ``(Z, Y, X)`` Segmentation; the table gains a ``plane`` column
    (the stack's plane index, ``planes[k]`` for the k-th result when given, else k).

    Labels stay unique across planes (plane ``z`` labels are offset by the nuclei of earlier planes).
    Settings that differ between planes (a stack of fluorescence and bright-field planes: the kind,
    the network, the post-processing) are lists, one value per plane, as the zoom and light always
    are; the model names each network used (``"a / b"``).
    """
    offset, labels, tables = 0, [], []
    for k, r in enumerate(results):
        lab = np.where(r.labels > 0, r.labels + offset, 0).astype(np.int32)
        t = r.table.copy()
        t.insert(0, "plane", k if planes is None else int(planes[k]))
        t["label"] = t["label"] + offset
        offset += int(r.labels.max())
        labels.append(lab)
        tables.append(t)
    first = results[0]
    varying = {k for r in results for k, v in r.settings.items() if any(o.settings.get(k) != v for o in results)}
    per_plane = varying | {"zoom", "noise", "smoothing", "light_ratio", "evened"}
    return Segmentation(
        np.stack(labels), np.stack([r.probability for r in results]),
        np.stack([r.uncertainty for r in results]), pd.concat(tables, ignore_index=True),
        np.stack([r.border for r in results]), " / ".join(dict.fromkeys(r.model for r in results)), first.device,
        {**first.settings, "per_plane": True, **{k: [r.settings.get(k) for r in results] for k in sorted(per_plane)}},
    )


def _checked_planes(planes, image) -> list[int]:
    """``planes`` of a stack as plane numbers; one line for none, or for one the stack lacks."""
    n = int(np.shape(image)[0])
    chosen = [int(p) for p in planes]
    if not chosen:
        raise InvalidImageError("no planes chosen: give at least one plane of the stack")
    bad = [p for p in chosen if not 0 <= p < n]
    if bad:
        raise InvalidImageError(f"plane {bad[0]} is not in the stack (planes 0 to {n - 1})")
    return chosen


def segment_any(
    image: np.ndarray,
    options: SegmentOptions | None = None,
    planes: list[int] | None = None,
    scale: tuple[float, float] | None = None,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> Segmentation:
    """Segment a 2D image, or planes of a stack (``is_stack``) combined by ``combine_planes``.

    Parameters
    ----------
    image : numpy.ndarray or array-like
        A 2D image or a stack (planes are read one at a time).
    options : SegmentOptions, optional
    planes : list of int, optional
        The planes of a stack to segment (default: all).
    scale : (float, float), optional
        Pixel size (for ``area_physical``).
    progress : callable, optional
        ``progress(fraction, message)`` per stage, tile and plane: the fraction in [0, 1] never falls,
        the message names the slice, the stage (``pipeline.STAGES``) and the tile.
    cancel : callable, optional
        Returns True to stop; ``errors.Cancelled`` is raised.
    """
    if not hasattr(image, "ndim"):  # a nested list, as segment() takes
        image = np.asarray(image)
    channel = SegmentOptions.build(options).channel
    if channel is None:  # with a channel chosen, (Z, Y, X, 1) is a stack of one-channel planes
        image = single_channel_dropped(image)
    stack = is_stack(image, channel)
    if stack and isinstance(image, np.ndarray):
        check_fits(image.shape, image.dtype, loaded=True)
    if stack and channel is None and image.ndim == 3 and image.shape[-1] < MIN_SIDE:
        raise InvalidImageError(f"got shape {image.shape}: a (Y, X, C) image of {image.shape[-1]} channels "
                                "needs the nucleus channel (channel=N)")
    todo = (list(range(np.shape(image)[0])) if planes is None else _checked_planes(planes, image)) if stack else [None]
    segs = []
    now = {"stage": "", "fraction": 0.0}

    def say(fraction: float, message: str) -> None:
        now["fraction"] = fraction
        if progress is not None:
            progress(fraction, message)

    for k, z in enumerate(todo):
        where = f"slice {z + 1}/{np.shape(image)[0]}, " if z is not None else ""

        def tiles(done, total, k=k, where=where):
            say((k + done / max(total, 1)) / len(todo), f"{where}{now['stage']}: tile {done}/{total}")

        def stage(name, k=k, where=where):
            now["stage"] = name
            say(max(now["fraction"], k / len(todo)), f"{where}{name}")

        plane = np.asarray(image if z is None else image[z])
        segs.append(segment(plane, options, scale=scale, progress=tiles, cancel=cancel, stage=stage))
        if cancel is not None and cancel():
            raise Cancelled()
    return combine_planes(segs, todo) if stack else segs[0]
