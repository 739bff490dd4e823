"""The nuclei table of a run: each block's rows (measured on its window, where its nuclei lie
whole), with labels offset as in the joined labels, streamed into one CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..inference.measure import COLUMNS
from ..io.writers import _atomic_write
from .blocks import BlockGrid
from .stitch import label_offsets
from .store import TABLE, ResultFolder


def block_table(folder: ResultFolder, key: str) -> pd.DataFrame:
    """The rows of block ``key`` as its worker measured them (labels local to the block)."""
    with np.load(folder.block_file(key)) as data:
        return pd.DataFrame({name[len("table."):]: data[name] for name in data.files if name.startswith("table.")})


def write_table(folder: ResultFolder, grid: BlockGrid, nuclei: dict[str, int], physical: bool) -> int:
    """Write ``nuclei.csv`` atomically, block by block in grid order; returns its rows."""
    offsets = label_offsets(grid, nuclei)
    columns = COLUMNS + (["area_physical"] if physical else [])
    rows = 0

    def write(tmp):
        nonlocal rows
        with open(tmp, "w", newline="") as fh:
            for n, b in enumerate(grid):
                table = block_table(folder, b.key).reindex(columns=columns)
                table["label"] = table["label"].astype(np.int64) + offsets[b.key]
                table.to_csv(fh, index=False, header=n == 0)
                rows += len(table)

    _atomic_write(folder.root / TABLE, write)
    return rows
