"""Atomic writers: a file (or a set of files) appears whole under its name or not at all, with the
permissions the user's umask gives new files."""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

_UMASK_LOCK = threading.Lock()


def _umask() -> int:
    """The process's umask: read from ``/proc`` (Linux), else by setting and restoring it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def _temporary(path: Path) -> str:
    """A new, empty temporary file beside ``path`` (``.<name>.<random>.part``), with the mode
    an ordinary new file gets (``mkstemp`` alone gives 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())
    return tmp


def write_set(files: Sequence[tuple[Path, Callable[[str], None]]]) -> list[Path]:
    """Write several files so that they appear together: each ``write(tmp)`` fills a temporary
    file beside its target; only when all succeeded are they renamed into place.

    On any error every temporary file is removed and the error raised, so that no target is left
    half written and none of the set is replaced.
    """
    for path, _ in files:  # renaming onto a folder fails only after earlier files were replaced
        if Path(path).is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder is in the way of this file", str(path))
    done: list[tuple[str, Path]] = []
    try:
        for path, write in files:
            path = Path(path)
            tmp = _temporary(path)
            done.append((tmp, path))
            write(tmp)
        for tmp, path in done:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in done:
            if os.path.exists(tmp):
                os.remove(tmp)
        raise
    return [path for _, path in done]


def _atomic_write(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    write_set([(Path(path), write)])


#: The TIFF Software tag of the label images this plugin writes: its reader opens them as Labels again.
LABELS_SOFTWARE = "napari-nucleiseg labels"


def tiff_writer(data: np.ndarray, compress: bool = True, pixel_size: tuple[float, ...] | None = None,
                labels: bool = False) -> Callable[[str], None]:
    """``write(tmp)`` that stores an array as a (zlib-compressed) TIFF; with ``pixel_size``
    (``(Y, X)`` or ``(Z, Y, X)``) an OME-TIFF that carries it (``pixel_size.ome_options``); ``labels``
    marks it as label image (``LABELS_SOFTWARE``)."""
    import tifffile

    from .pixel_size import ome_options

    extra = ome_options(pixel_size, data.ndim)
    if labels:
        extra["software"] = LABELS_SOFTWARE
    return lambda tmp: tifffile.imwrite(tmp, data, compression="zlib" if compress else None, **extra)


def png_writer(data: np.ndarray) -> Callable[[str], None]:
    """``write(tmp)`` that stores a uint8 array as PNG."""
    import imageio.v3 as iio

    return lambda tmp: iio.imwrite(tmp, data, extension=".png")


def csv_writer(table) -> Callable[[str], None]:
    """``write(tmp)`` that stores a pandas DataFrame as UTF-8 CSV (a file name that is not UTF-8, as
    some file systems hold, is written with its odd bytes escaped: ``caf\\udce9.tif``)."""
    return lambda tmp: table.to_csv(tmp, index=False, errors="backslashreplace")


def write_tiff(path, data: np.ndarray, compress: bool = True, pixel_size: tuple[float, ...] | None = None) -> None:
    """Write an array as a (zlib-compressed) TIFF atomically (with ``pixel_size``: see ``tiff_writer``)."""
    _atomic_write(path, tiff_writer(data, compress, pixel_size))


def write_png(path, data: np.ndarray) -> None:
    """Write a uint8 array as PNG atomically."""
    _atomic_write(path, png_writer(data))


def write_csv(path, table) -> None:
    """Write a pandas DataFrame as CSV atomically."""
    _atomic_write(path, csv_writer(table))


def atomic_write_text(path, text: str) -> None:
    """Write text atomically."""
    _atomic_write(path, lambda tmp: Path(tmp).write_text(text))
