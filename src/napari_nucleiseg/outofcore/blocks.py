"""The block grid: chunk-aligned cores that tile the image, each read with a halo around it.

A block's *core* is the region it owns (and the chunk of the output it writes); its *window*
is the core grown by the halo on every side (clipped to the image), the region it segments.
With a halo larger than a nucleus, every nucleus whose centre lies in a core lies whole in that
block's window. A halo is at most a block, so windows only reach the 8 neighbouring cores.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Block (and output chunk) side in pixels when none is given.
DEFAULT_BLOCK = 1024


@dataclass(frozen=True)
class Block:
    """One block: grid position, core and window as ``(y0, y1, x0, x1)`` in image pixels."""

    iy: int
    ix: int
    core: tuple[int, int, int, int]
    window: tuple[int, int, int, int]

    @property
    def key(self) -> str:
        """``"iy_ix"``, the block's name in file names and markers."""
        return f"{self.iy}_{self.ix}"

    def core_in_window(self) -> tuple[slice, slice]:
        """The core as slices of an array of the window."""
        return _relative(self.core, self.window)


@dataclass(frozen=True)
class BlockGrid:
    """Blocks of ``block`` pixels (the last row and column smaller) with a ``halo``."""

    shape: tuple[int, int]
    block: int
    halo: int

    def __post_init__(self):
        if self.block < 16:
            raise ValueError(f"block must be at least 16 pixels, not {self.block}")
        if not 0 <= self.halo <= self.block:
            raise ValueError(f"halo must be between 0 and the block size ({self.block}), not {self.halo}")

    @property
    def rows(self) -> int:
        return -(-self.shape[0] // self.block)

    @property
    def cols(self) -> int:
        return -(-self.shape[1] // self.block)

    def __len__(self) -> int:
        return self.rows * self.cols

    def __iter__(self):
        for iy in range(self.rows):
            for ix in range(self.cols):
                yield self.at(iy, ix)

    def at(self, iy: int, ix: int) -> Block:
        """The block in row ``iy``, column ``ix`` of the grid."""
        h, w, b, m = self.shape[0], self.shape[1], self.block, self.halo
        y0, x0 = iy * b, ix * b
        y1, x1 = min(y0 + b, h), min(x0 + b, w)
        return Block(iy, ix, (y0, y1, x0, x1), (max(0, y0 - m), min(h, y1 + m), max(0, x0 - m), min(w, x1 + m)))

    def neighbourhood(self, block: Block) -> list[Block]:
        """The block itself first, then the (up to 8) blocks whose windows reach into its core."""
        around = [self.at(block.iy + dy, block.ix + dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                  if (dy or dx) and 0 <= block.iy + dy < self.rows and 0 <= block.ix + dx < self.cols]
        return [block, *around]


def overlap(window_of: Block, core_of: Block) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Where ``window_of``'s window meets ``core_of``'s core: as slices of the window and of the
    core; None if they do not meet."""
    wy0, wy1, wx0, wx1 = window_of.window
    cy0, cy1, cx0, cx1 = core_of.core
    box = (max(wy0, cy0), min(wy1, cy1), max(wx0, cx0), min(wx1, cx1))
    if box[0] >= box[1] or box[2] >= box[3]:
        return None
    return _relative(box, window_of.window), _relative(box, core_of.core)


def _relative(box, frame) -> tuple[slice, slice]:
    return slice(box[0] - frame[0], box[1] - frame[0]), slice(box[2] - frame[2], box[3] - frame[2])
