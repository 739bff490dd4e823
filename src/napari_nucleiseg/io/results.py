"""The result files of one segmented image (or stack), written by the CLI, batch and widgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import OutputBlockedError, OutputWriteError
from ..inference.checks import nucleus_channel, within_float32
from .overlay import overlay_png
from .writers import csv_writer, png_writer, tiff_writer, write_set

#: The result files of one image, by suffix after its stem.
OUTPUT_SUFFIXES = ("_labels.tif", "_probability.tif", "_uncertainty.tif", "_overlay.png", "_nuclei.csv")


def result_stem(path) -> str:
    """The name an input's results start with: its file name without the suffix, and without the
    ``.ome`` of an OME-TIFF or OME-Zarr (``slide.ome.tif`` -> ``slide``)."""
    return Path(path).stem.removesuffix(".ome")


def result_of(path) -> str | None:
    """The stem of the image a result file belongs to (``a_labels.tif`` -> ``a``: its name without a
    ``OUTPUT_SUFFIXES`` ending, of any case), None for a file that is not named as a result."""
    name = Path(path).name
    suffix = next((x for x in OUTPUT_SUFFIXES if name.casefold().endswith(x.casefold())), None)
    return name[: -len(suffix)] if suffix else None


def label_dtype(labels: np.ndarray):
    """uint16, uint32 beyond 65535, uint64 beyond 4294967295 (a painted id): no id wraps."""
    top = int(labels.max())
    return np.uint16 if top < 2**16 else np.uint32 if top < 2**32 else np.uint64


def write_results(seg, image: np.ndarray, out_stem, probability: bool = True, uncertainty: bool = True,
                  overlay: bool = False, pixel_size: tuple[float, ...] | None = None) -> list[Path]:
    """Write ``<out_stem>_labels.tif``, optional maps, an optional overlay and ``_nuclei.csv``.

    The files appear together or not at all (``writers.write_set``); result files of the same
    stem that this call does not write (a probability map from an earlier run with other
    choices) are removed, so that the files of a stem always come from one segmentation.

    Parameters
    ----------
    seg : inference.pipeline.Segmentation
    image : numpy.ndarray
        The segmented image (for the overlay; a stack's overlay shows its middle plane).
    out_stem : str or Path
        Output path without the ``_labels.tif``-style suffix; its folder is created.
    probability, uncertainty, overlay : bool
        Which optional files to write.
    pixel_size : tuple of float, optional
        The image's pixel size (``io.pixel_size``), stored in the TIFFs' metadata.

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    errors.OutputWriteError
        When the folder cannot be created or written (read-only, full disk...): one line naming
        the folder and the cause; nothing of this set is left behind.
    """
    base = Path(out_stem)
    labels = seg.labels
    files = [(f"{base}_labels.tif", tiff_writer(labels.astype(label_dtype(labels)),
                                                     pixel_size=pixel_size, labels=True))]
    if probability:
        files.append((f"{base}_probability.tif", tiff_writer(seg.probability.astype(np.float32),
                                                             pixel_size=pixel_size)))
    if uncertainty:
        files.append((f"{base}_uncertainty.tif", tiff_writer(seg.uncertainty.astype(np.float32),
                                                             pixel_size=pixel_size)))
    if overlay:
        z = labels.shape[0] // 2
        shown, outlined = (image, labels) if labels.ndim == 2 else (image[z], labels[z])
        shown = nucleus_channel(shown, seg.settings.get("channel"))  # the channel that was segmented
        shown = within_float32(shown)[0]  # float64 beyond float32 is rescaled, as it was to segment
        files.append((f"{base}_overlay.png", png_writer(overlay_png(shown, outlined))))
    files.append((f"{base}_nuclei.csv", csv_writer(seg.table)))
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        written = write_set([(Path(p), write) for p, write in files])
        for suffix in OUTPUT_SUFFIXES:
            stale = Path(f"{base}{suffix}")
            if stale not in written:
                stale.unlink(missing_ok=True)
    except IsADirectoryError as exc:  # this image's file alone: a run goes on with the others
        raise OutputBlockedError(f"cannot write {exc.filename or base}: a folder of that name is in the way") from None
    except OSError as exc:
        raise OutputWriteError(base.parent, exc) from None
    return written
