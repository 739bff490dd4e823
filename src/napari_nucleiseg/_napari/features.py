"""Per-nucleus tables as a Labels layer's ``features``, and where the writer keeps them (import-light: the
reader uses it for every TIFF napari opens)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def table_path(path) -> Path:
    """The CSV written beside labels ``path``: same name, ``.csv``."""
    return Path(path).with_suffix(".csv")


def label_features(table):
    """``table`` with napari's ``index`` column first, equal to its ``label`` column, so that napari
    finds each label's row by the label's value (without it, label v shows row v counted from 0).

    Parameters
    ----------
    table : pandas.DataFrame
        Per-nucleus table with a ``label`` column.

    Returns
    -------
    pandas.DataFrame
        A copy with ``index`` as its first column.
    """
    features = table.drop(columns="index", errors="ignore")
    features.insert(0, "index", features["label"].astype(np.int64).to_numpy())
    return features


def pixel_area(scale) -> float | None:
    """The area of one pixel from a layer's ``scale`` (its last two axes), or None without one."""
    if scale is None or len(scale) < 2:
        return None
    return abs(float(scale[-1]) * float(scale[-2]))
