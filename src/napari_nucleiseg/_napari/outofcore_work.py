"""The Segment Nuclei widget's out-of-core route, with no viewer and no Qt: a large or lazy
(dask / multiscale) 2D image layer segmented block by block into an OME-Zarr result, whose
layers open lazily from the zarr arrays (``outofcore``).

The widget calls :func:`wants_out_of_core` on its input and, when True, runs
:func:`segment_large_image` in its thread worker instead of ``segment_work.segment_image``; both
return a ``SegmentOutcome``, so the widget shows them the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import Cancelled, NucleisegError
from ..options import SegmentOptions
from .segment_work import ImageInput, SegmentOutcome, _pixel_size, _spatial, layer_tuples


def wants_out_of_core(inp: ImageInput) -> bool:
    """True for a 2D image (not a stack) that is lazy (dask, zarr) or above the size threshold."""
    from ..outofcore.auto import threshold

    if inp.is_stack:
        return False
    shape = np.shape(inp.data)
    return not isinstance(inp.data, np.ndarray) or int(shape[0]) * int(shape[1]) > threshold()


#: Results of one layer kept in the cache: the newest and the one before it (still on screen while
#: the newest is shown).
KEPT_RESULTS = 2


def default_folder(inp: ImageInput, options: SegmentOptions | None = None, run: dict | None = None) -> Path:
    """Where a layer's result goes: the user cache, one folder per layer name and shape and per
    settings, so that a run with other settings (cancelled, or failing) never touches the result
    on screen, and the same settings resume."""
    import platformdirs

    tag = hashlib.sha1(f"{inp.name}{np.shape(inp.data)}".encode()).hexdigest()[:10]
    settings = json.dumps([dataclasses.asdict(SegmentOptions.build(options)), run or {}], sort_keys=True, default=str)
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in inp.name)[:40]
    root = Path(platformdirs.user_cache_dir("napari-nucleiseg", appauthor=False)) / "outofcore"
    return root / f"{safe}-{tag}" / hashlib.sha1(settings.encode()).hexdigest()[:10]


def _drop_older_results(folder: Path) -> None:
    """Keep ``KEPT_RESULTS`` results of the layer whose results ``folder`` (the newest) is among."""
    others = sorted((p for p in folder.parent.iterdir() if p.is_dir() and p != folder),
                    key=lambda p: p.stat().st_mtime, reverse=True)
    for old in others[KEPT_RESULTS - 1:]:
        shutil.rmtree(old, ignore_errors=True)


def segment_large_image(
    inp: ImageInput,
    options: SegmentOptions | None = None,
    out=None,
    progress: Callable[[float, str], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    **run,
) -> SegmentOutcome:
    """Segment ``inp`` out of core and build lazy output layers (multiscale, from the zarr result).

    Parameters
    ----------
    inp : ImageInput
        A 2D (or RGB) image, typically dask-backed or a multiscale layer's level 0.
    options : SegmentOptions, optional
    out : str or Path, optional
        Result folder (default: ``default_folder``); a run cancelled earlier resumes there.
    progress : callable, optional
        ``progress(fraction, message)`` per block.
    cancel : callable, optional
        Returns True to stop after the blocks in flight.
    **run
        Passed to ``segment_out_of_core`` (``block``, ``workers``, ``client``...).

    Returns
    -------
    SegmentOutcome
        Never raises: user errors come back as ``outcome.error``.
    """
    from ..inference.measure import unsure_note
    from ..outofcore import segment_out_of_core
    from ..outofcore.auto import table_summary
    from ..zoo import unsure_below_of

    t0 = time.perf_counter()
    try:
        scale, translate = _spatial(inp.scale, 2, 1.0), _spatial(inp.translate, 2, 0.0)

        def blocks(done, total):
            if progress is not None:
                progress(done / total, f"block {done}/{total}")

        folder = Path(out) if out else default_folder(inp, options, run)
        result = segment_out_of_core(inp.data, folder, options, scale=_pixel_size(scale), progress=blocks,
                                     cancel=cancel, overwrite=True, **run)
        if not out:
            os.utime(folder)  # the newest result, also when it came from the cache untouched
            _drop_older_results(folder)
        layers = result_layers(result.folder, inp.name, scale, translate, result.settings)
        return SegmentOutcome(layers, result.nuclei, result.settings["weights"], _device_text(options),
                              round(time.perf_counter() - t0, 2), float(result.settings["zoom"]),
                              float(result.settings.get("smoothing", 0.0)),
                              image_kind=result.settings.get("image_kind", ""),
                              evened=float(result.settings.get("evened", 0.0)),
                              unsure=unsure_note(table_summary(result.table_path)["mean_confidence"],
                                                 unsure_below_of(result.settings["model"])))
    except Cancelled:
        return SegmentOutcome(cancelled=True)
    except NucleisegError as exc:
        return SegmentOutcome(error=str(exc))


def _device_text(options) -> str:
    """The device the blocks ran on, as the in-memory path names it."""
    from ..device import describe, resolve_device
    from ..options import SegmentOptions

    try:
        return describe(resolve_device(SegmentOptions.build(options).device))
    except ValueError:
        return ""


def result_layers(folder, name: str, scale, translate, settings: dict) -> list[tuple]:
    """Layer tuples of a finished out-of-core result: every image a lazy multiscale list of zarr
    arrays (a map that was not written is a zero-filled dask pyramid of the labels' shape)."""
    import zarr

    def pyramid(image):
        group = zarr.open_group(str(Path(folder) / image), mode="r")
        return [group[d["path"]] for d in group.attrs["multiscales"][0]["datasets"]]

    labels = pyramid("labels.zarr")
    maps = [pyramid(f) if (Path(folder) / f).exists() else _zeros_like(labels)
            for f in ("probability.zarr", "uncertainty.zarr")]
    table = pd.read_csv(Path(folder) / "nuclei.csv")
    layers = layer_tuples(name, labels, maps[0], maps[1], table, scale, translate,
                          {**settings, "folder": str(folder), "out_of_core": True})
    # napari cannot make a Labels layer of a one-level pyramid: such results are plain arrays, the labels
    # read into memory (one block at most) so that they can be corrected like any result
    one_level = len(labels) == 1
    layers = [(_one_level(data[0], kind) if one_level else data, {**kwargs, "multiscale": not one_level}, kind)
              for data, kwargs, kind in layers]
    return layers


def _one_level(level, kind: str):
    return np.asarray(level) if kind == "labels" else level


def _zeros_like(levels: list) -> list:
    import dask.array as da

    return [da.zeros(level.shape, np.float32, chunks=level.chunks) for level in levels]
