"""Will an image fit? The memory a segmentation needs, estimated from the shape alone, against the
memory this process may still use, so that a too-large image is refused before anything is
allocated."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from .errors import ImageTooLargeError

#: Peak bytes per pixel of one plane while it is segmented (the prepared image, the blended maps,
#: watershed and measurements): an 8000x8000 image peaked at about 56 bytes per pixel at any tile size.
PEAK_BYTES_PER_PIXEL = 60
#: Bytes per pixel of each segmented plane kept until the result is complete (labels, probability,
#: uncertainty and border maps).
KEPT_BYTES_PER_PIXEL = 16
#: A container's memory limit and use: cgroup v2, then v1 (whose "no limit" is a huge number).
CGROUP_FILES = (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"))
OUT_OF_CORE_HINT = "use out-of-core segmentation (`nucleiseg segment --out-of-core`)"


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def available_bytes() -> int:
    """Memory this process may still allocate: the system's available memory, or less under a
    cgroup (container) limit, v2 or v1; total physical memory where neither can be read."""
    candidates = [_meminfo_available()]
    for limit_file, used_file in CGROUP_FILES:
        limit, used = _read_int(limit_file), _read_int(used_file)
        if limit is not None and used is not None:
            candidates.append(max(0, limit - used))
    known = [c for c in candidates if c is not None]
    if known:
        return min(known)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def plane_layout(shape: tuple[int, ...], colour_last: bool | None = None) -> tuple[int, int]:
    """``(planes, pixels per plane)`` of an image shape laid out as the segmentation reads it: the
    plane is the last two axes after a colour or channel axis (last), further axes are planes (a
    ``(Z, Y, X, 3)`` stack has Z planes, a grey ``(3, Y, X)`` stack three).

    ``colour_last``: the last axis is colour (True) or not (False); None: it is when it holds 2-4
    values of a 3-axis or larger shape.
    """
    dims = [int(n) for n in shape]
    if len(dims) < 2:
        return 1, max(dims + [0])
    if colour_last if colour_last is not None else (len(dims) >= 3 and dims[-1] in (2, 3, 4)):
        dims = dims[:-1]
    return max(1, math.prod(dims[:-2])), math.prod(dims[-2:])


def segmentation_bytes(shape, dtype, loaded: bool = False, colour_last: bool | None = None) -> int:
    """Bytes a segmentation of an image of ``shape`` and ``dtype`` needs at its peak (the image
    itself too unless it is ``loaded`` already; ``colour_last`` as ``plane_layout``)."""
    planes, plane = plane_layout(tuple(shape), colour_last)
    image = 0 if loaded else math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    return image + planes * plane * KEPT_BYTES_PER_PIXEL + plane * PEAK_BYTES_PER_PIXEL


def _gb(n: int) -> str:
    return f"{n / 1e9:.1f} GB"


def check_fits(shape, dtype, what: str = "the image", segment: bool = True, loaded: bool = False,
               colour_last: bool | None = None) -> None:
    """Refuse an image that cannot fit in memory, before anything is allocated for it.

    Parameters
    ----------
    shape, dtype
        The image's shape and pixel type (from a file header, or of an array).
    what : str
        How the message names the image (a path).
    segment : bool
        Check the memory of a segmentation (``segmentation_bytes``); False: only the decoded image.
    loaded : bool
        The image is in memory already (only what a segmentation adds is checked).
    colour_last : bool, optional
        Whether the shape's last axis is colour (``plane_layout``); None: guessed.

    Raises
    ------
    errors.ImageTooLargeError
        One line: the image, the memory it needs and has, and the out-of-core route.
    """
    if segment:
        need = segmentation_bytes(shape, dtype, loaded, colour_last)
    else:
        need = 0 if loaded else math.prod(int(n) for n in shape) * np.dtype(dtype).itemsize
    have = available_bytes()
    if need > have:
        size = "x".join(str(int(n)) for n in shape)
        task = "segment" if segment else "read"
        raise ImageTooLargeError(
            f"{what}: too large to {task} in memory ({size} {np.dtype(dtype).name} needs about {_gb(need)}, "
            f"{_gb(have)} available); {OUT_OF_CORE_HINT}")
