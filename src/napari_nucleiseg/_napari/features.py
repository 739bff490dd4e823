"""Per-nucleus tables as a Labels layer's ``features``."""

from __future__ import annotations

import numpy as np


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
