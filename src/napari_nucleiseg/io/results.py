"""The result files of one segmented image (or stack), written by the CLI, batch and widgets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .overlay import overlay_png
from .writers import write_csv, write_png, write_tiff


def label_dtype(labels: np.ndarray):
    """uint16, or uint32 beyond 65535 nuclei."""
    return np.uint16 if labels.max() < 65536 else np.uint32


def write_results(seg, image: np.ndarray, out_stem, probability: bool = True, uncertainty: bool = True,
                  overlay: bool = False) -> list[Path]:
    """Write ``<out_stem>_labels.tif``, optional maps, an optional overlay and ``_nuclei.csv``.

    Parameters
    ----------
    seg : inference.pipeline.Segmentation
    image : numpy.ndarray
        The segmented image (for the overlay; a stack's overlay shows its middle plane).
    out_stem : str or Path
        Output path without the ``_labels.tif``-style suffix; its folder is created.
    probability, uncertainty, overlay : bool
        Which optional files to write.

    Returns
    -------
    list of Path
        The files written, each written atomically.
    """
    base = Path(out_stem)
    base.parent.mkdir(parents=True, exist_ok=True)
    labels = seg.labels
    paths = [Path(f"{base}_labels.tif")]
    write_tiff(paths[0], labels.astype(label_dtype(labels)))
    if probability:
        paths.append(Path(f"{base}_probability.tif"))
        write_tiff(paths[-1], seg.probability.astype(np.float32))
    if uncertainty:
        paths.append(Path(f"{base}_uncertainty.tif"))
        write_tiff(paths[-1], seg.uncertainty.astype(np.float32))
    if overlay:
        paths.append(Path(f"{base}_overlay.png"))
        z = labels.shape[0] // 2
        write_png(paths[-1], overlay_png(image, labels) if labels.ndim == 2 else overlay_png(image[z], labels[z]))
    paths.append(Path(f"{base}_nuclei.csv"))
    write_csv(paths[-1], seg.table)
    return paths
