"""Stitching: globally unique labels, and each labels chunk put together from the blocks whose
windows reach into it.

A nucleus belongs to the block that holds its centroid (``worker.centred_in_core``) and is kept
whole by it, also where it reaches into a neighbouring core; so no nucleus is cut at a seam and
none is counted twice. Labels are offset by the nuclei of the blocks before, in grid order, so
they run 1..N over the image whatever order the blocks finished in.
"""

from __future__ import annotations

import numpy as np

from .blocks import Block, BlockGrid, overlap
from .store import LABELS, ResultFolder, open_level


def label_offsets(grid: BlockGrid, nuclei: dict[str, int]) -> dict[str, int]:
    """Offset of each block's labels: the nuclei of the blocks before it in grid order."""
    offsets, total = {}, 0
    for block in grid:
        offsets[block.key] = total
        total += int(nuclei[block.key])
    return offsets


def join_chunk(folder: ResultFolder, grid: BlockGrid, block: Block, offsets: dict[str, int]) -> None:
    """Write the labels of ``block``'s core: its own nuclei first, then those of its neighbours
    that reach into it, on pixels still free (a pixel two blocks both claim, a rare seam tie,
    goes to the core's own block)."""
    y0, y1, x0, x1 = block.core
    out = np.zeros((y1 - y0, x1 - x0), np.int32)
    for other in grid.neighbourhood(block):
        where = overlap(other, block)
        if where is None:
            continue
        with np.load(folder.block_file(other.key)) as data:
            name = f"piece.{block.key}"
            if name not in data.files:
                continue
            piece = data[name]
        target = out[where[1]]
        free = (target == 0) & (piece > 0)
        target[free] = piece[free] + offsets[other.key]
    open_level(folder, LABELS)[y0:y1, x0:x1] = out
    folder.joined_file(block.key).parent.mkdir(parents=True, exist_ok=True)
    folder.joined_file(block.key).touch()


def join_task(out: str, grid: BlockGrid, iy: int, ix: int, offsets: dict[str, int], cancel=None
              ) -> tuple[str, int]:
    """``join_chunk`` by grid position (what executors submit; a chunk is quick, so ``cancel`` is
    left to the executor, between chunks)."""
    block = grid.at(iy, ix)
    join_chunk(ResultFolder(out), grid, block, offsets)
    return block.key, 0
