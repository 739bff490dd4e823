"""Atomic writers: a file appears whole under its name or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_tiff(path, data: np.ndarray, compress: bool = True) -> None:
    """Write an array as a (zlib-compressed) TIFF atomically."""
    import tifffile

    _atomic_write(
        path,
        lambda tmp: tifffile.imwrite(tmp, data, compression="zlib" if compress else None),
    )


def write_png(path, data: np.ndarray) -> None:
    """Write a uint8 array as PNG atomically."""
    import imageio.v3 as iio

    _atomic_write(path, lambda tmp: iio.imwrite(tmp, data, extension=".png"))


def write_csv(path, table) -> None:
    """Write a pandas DataFrame as CSV atomically."""
    _atomic_write(path, lambda tmp: table.to_csv(tmp, index=False))


def atomic_write_text(path, text: str) -> None:
    """Write text atomically."""
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text))
