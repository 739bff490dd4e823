"""Per-nucleus measurements table, including the model's confidence in each nucleus."""

from __future__ import annotations

import numpy as np
import pandas as pd
from skimage.segmentation import relabel_sequential

from .shape import shape_table

COLUMNS = ["label", "area", "centroid_y", "centroid_x", "mean_intensity", "perimeter",
           "eccentricity", "solidity", "mean_probability", "confidence"]
#: an image whose nuclei have a mean confidence below this is one the model is unsure of: every DSB
#: validation image of the default model is at 0.68 or more, and the images below it were
#: segmented poorly (DSB score 0.04-0.15; docs/unsure_images.md)
UNSURE_BELOW = 0.6


def label_means(labels: np.ndarray, values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Mean of ``values`` over each label of ``index`` (float64; NaN for a label with no pixel), as
    ``scipy.ndimage.mean`` gives it, from two bincounts (labels up to about the number of pixels)."""
    flat = labels.ravel().astype(np.intp, copy=False)
    n = int(flat.max()) + 1 if flat.size else 1
    sums = np.bincount(flat, weights=np.asarray(values, np.float64).ravel(), minlength=n)
    counts = np.bincount(flat, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        return sums[index] / counts[index]


def nucleus_confidence(labels: np.ndarray, uncertainty: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Confidence in [0, 1] per nucleus: 1 minus its mean per-pixel uncertainty.

    Of the candidates in ``experiments/confidence_study.py`` this separated correct
    from wrong nuclei best on the validation split (AUROC in the model cards).
    """
    if len(index) == 0:
        return np.zeros(0, np.float32)
    return np.clip(1.0 - label_means(labels, uncertainty, index), 0.0, 1.0).astype(np.float32)


def is_unsure(mean: float | None, below: float | None = None) -> bool:
    """True for an image whose nuclei's mean confidence ``mean`` is below ``below`` (the model's cut,
    ``ModelEntry.unsure_below``; default ``UNSURE_BELOW``; False with no nuclei: NaN or None)."""
    return mean is not None and bool(mean < (UNSURE_BELOW if below is None else below))


def mean_confidence(table: pd.DataFrame) -> float | None:
    """Mean ``confidence`` of a nuclei table; None when it has no nucleus."""
    return float(table["confidence"].mean()) if len(table) else None


def unsure_note(mean: float | None, below: float | None = None) -> str:
    """One sentence for an image whose nuclei's mean confidence is ``mean`` when the model is unsure
    of it (``is_unsure`` with the model's cut ``below``), else ``""``."""
    if not is_unsure(mean, below):
        return ""
    below = UNSURE_BELOW if below is None else below
    return (f"The model is unsure of this image (mean nucleus confidence {mean:.2f}, below {below:g}): "
            "check the least certain nuclei first, or correct a few and fine-tune.")


def channel_means(table: pd.DataFrame, labels: np.ndarray, channels: np.ndarray) -> pd.DataFrame:
    """``table`` with ``mean_intensity_c<k>``, each nucleus' mean in channel ``k`` of ``channels``
    ``(Y, X, C)`` (a marker beside the nucleus stain, in its own units), after ``mean_intensity``."""
    at = list(table.columns).index("mean_intensity") + 1
    index = table["label"].to_numpy()
    for k in range(channels.shape[-1]):
        table.insert(at + k, f"mean_intensity_c{k}", label_means(labels, channels[..., k], index))
    return table


def measure(labels: np.ndarray, intensity: np.ndarray, probability: np.ndarray,
            uncertainty: np.ndarray, scale: tuple[float, float] | None = None) -> pd.DataFrame:
    """One row per nucleus: label, area, centroid, mean intensity, shape, probability, confidence.

    Parameters
    ----------
    labels : numpy.ndarray
        int instance labels ``(Y, X)``.
    intensity : numpy.ndarray
        Grey image ``(Y, X)`` in its original units (mean intensity is measured on it).
    probability, uncertainty : numpy.ndarray
        Model maps ``(Y, X)``.
    scale : (float, float), optional
        Pixel size (y, x); adds ``area_physical`` when given.
    """
    if labels.max() == 0:
        columns = COLUMNS + (["area_physical"] if scale is not None else [])
        return pd.DataFrame({c: pd.Series(dtype=np.int64 if c in ("label", "area") else float) for c in columns})
    if labels.max() > labels.size:  # sparse ids: shape_table indexes arrays by id
        dense, _, back = relabel_sequential(labels)
        table = measure(dense, intensity, probability, uncertainty, scale)
        table["label"] = np.asarray(back[table["label"].to_numpy().copy()], np.int64)
        return table
    df = shape_table(labels)
    idx = df["label"].to_numpy()
    df.insert(4, "mean_intensity", label_means(labels, intensity, idx))
    df["mean_probability"] = label_means(labels, probability, idx).astype(np.float32)
    df["confidence"] = nucleus_confidence(labels, uncertainty, idx)
    if scale is not None:
        df["area_physical"] = df["area"] * float(scale[0]) * float(scale[1])
    df["label"] = df["label"].astype(np.int64)
    df["area"] = df["area"].astype(np.int64)
    return df
