"""Lazy input: a 2D image read region by region from a (Big)TIFF, a zarr / OME-Zarr array or a
dask array, never whole.

``open_source`` checks what it can before any work starts (the dimensions, the OME-Zarr metadata,
that a chunk, tile or strip is small enough to decode, and for TIFF files that every tile or strip
lies inside the file), so that a bad input is one clear message.
"""

from __future__ import annotations

import functools
import math
import mmap
import os
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, InvalidImageError, NucleisegError
from ..inference.checks import check_channel, check_pixel_type
from ..io.images import colour_axes, quiet_tifffile
from .ngff import multiscale_level

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
#: axis letters of a spatial row / column and of colour samples (OME-NGFF / tifffile spellings)
_COLOUR_AXES = ("c", "s")
#: Most bytes of one zarr chunk or TIFF tile/strip: reading any window decodes the chunks it
#: touches whole, so a larger one (a small store that declares one huge chunk) is refused.
MAX_CHUNK_BYTES = 256 * 2**20


class ImageSource:
    """A 2D ``(Y, X)`` or ``(Y, X, 3|4)`` image read a window at a time.

    Pickles without its open file handle (a worker process or Dask worker reopens the file), so
    it can be sent to any executor. Make one with ``open_source``.

    Attributes
    ----------
    name : str
        The file or folder (or ``"array"``), for messages.
    shape : tuple of int
        ``(Y, X)`` or ``(Y, X, C)`` after dropping single planes and moving colour last.
    dtype : numpy.dtype
    """

    def __init__(self, name: str, opener, index: tuple, colour_axis: int | None, shape, dtype, array=None):
        self.name = name
        self._opener = opener
        self._index = index
        self._colour_axis = colour_axis
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._array = array

    def __getstate__(self):
        state = dict(self.__dict__)
        if self._opener is not None:
            state["_array"] = None
        return state

    @property
    def array(self):
        """The underlying lazy array (opened on first use in this process)."""
        if self._array is None:
            self._array = self._opener()
        return self._array

    def read(self, ys: slice, xs: slice) -> np.ndarray:
        """Pixels ``[ys, xs]`` as a NumPy array ``(h, w)`` or ``(h, w, C)``.

        Raises
        ------
        ImageReadError
            The region could not be decoded (a truncated or corrupt tile, a missing chunk file).
        """
        index = tuple(ys if i == "y" else xs if i == "x" else i for i in self._index)
        try:
            region = np.asarray(self.array[index])
        except Exception as exc:  # decoders raise their own kinds (zlib.error, OSError, KeyError...)
            raise ImageReadError(self.name, f"pixels [{ys.start}:{ys.stop}, {xs.start}:{xs.stop}] could not "
                                 f"be read ({type(exc).__name__}: {exc}); the file may be truncated or "
                                 "corrupt") from None
        if not region.dtype.isnative:  # a memory map of a big-endian TIFF (ImageJ's default)
            region = region.astype(region.dtype.newbyteorder("="))
        if self._colour_axis is not None:
            region = np.moveaxis(region, self._colour_axis, -1)
        return region

    @property
    def pixels(self) -> int:
        """Pixels of one plane (Y * X)."""
        return self.shape[0] * self.shape[1]


def open_source(source, level: int = 0, name: str | None = None, channel: int | None = None) -> ImageSource:
    """An ``ImageSource`` on a path (TIFF/BigTIFF, zarr or OME-Zarr folder) or an array (dask,
    zarr, NumPy memmap, ...).

    Parameters
    ----------
    source : str, Path, ImageSource or array-like
        A multiscale OME-Zarr or pyramidal TIFF is read at ``level``.
    level : int
        Pyramid level (0: full resolution).
    name : str, optional
        What messages call an array source.
    channel : int, optional
        The nucleus channel of a multichannel image: that plane of its channel axis (``C``/``S``
        of any length; an array's last axis) is read alone, as a grey image.

    Raises
    ------
    ImageReadError, InvalidImageError
        The file cannot be opened, is truncated, or is not one 2D (colour) image.
    """
    if isinstance(source, ImageSource):
        return source
    src = _opened(source, level, name, channel)
    check_pixel_type(src.dtype, src.name)
    return src


def _opened(source, level: int, name: str | None, channel: int | None) -> ImageSource:
    require_zarr()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise ImageReadError(path, "no such file or folder")
        if path.is_dir() or path.suffix.lower() == ".zarr":
            return _zarr_source(path, level, channel)
        if path.name.lower().endswith(TIFF_SUFFIXES):
            return _tiff_source(path, level, channel)
        raise ImageReadError(path, "out-of-core segmentation reads TIFF/BigTIFF files and zarr / OME-Zarr "
                             "folders; convert other formats first")
    shape = tuple(np.shape(source))
    axes = _guess_axes(shape, channel)
    index, colour, plane = _plane_index(shape, axes, name or "array", channel)
    return ImageSource(name or "array", _memmap_opener(source), index, colour, plane, source.dtype, array=source)


#: Where ``spilled`` writes an in-memory image for worker processes or a Dask cluster (in the result folder).
SPILL_NAME = ".source.npy"


def spilled(src: ImageSource, folder) -> ImageSource:
    """``src`` as a source that worker processes or a Dask cluster open by file name: a plain
    in-memory NumPy image is written once to ``folder/SPILL_NAME`` and mapped from there, instead of
    being pickled with every block task. Other sources are returned as they are."""
    from ..io.writers import write_set

    if src._opener is not None or type(src._array) is not np.ndarray:
        return src
    path = Path(folder) / SPILL_NAME
    array = src._array

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.save adds no ".npy" to the name
            np.save(fh, array)

    write_set([(path, write)])
    return ImageSource(src.name, functools.partial(np.load, str(path), mmap_mode="r"), src._index,
                       src._colour_axis, src.shape, src.dtype)


def _memmap_opener(source):
    """For a whole memory-mapped file: a function that maps it again, so that block tasks sent to
    worker processes or a Dask cluster carry its name, not its pixels (None for other arrays)."""
    if not (isinstance(source, np.memmap) and isinstance(source.base, mmap.mmap) and source.filename
            and source.flags.c_contiguous):
        return None
    return functools.partial(np.memmap, source.filename, dtype=source.dtype, mode="r", offset=source.offset,
                             shape=source.shape)


def require_zarr() -> None:
    """Raise NucleisegError (one line, with the remedy) when zarr 3 is not installed."""
    try:
        import zarr
    except ImportError:
        raise NucleisegError("out-of-core segmentation needs zarr 3 (Python >= 3.11): pip install 'zarr>=3'") from None
    if int(zarr.__version__.split(".")[0]) < 3:
        raise NucleisegError(f"out-of-core segmentation needs zarr 3, not {zarr.__version__}: pip install 'zarr>=3'")


def _tiff_source(path: Path, level: int, channel: int | None = None) -> ImageSource:
    import tifffile

    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            if not 0 <= level < len(series.levels):
                raise ImageReadError(path, f"has {len(series.levels)} pyramid level(s), level {level} asked for")
            chosen = series.levels[level]
            shape, axes, dtype = chosen.shape, colour_axes(tif, chosen.axes).lower(), chosen.dtype
            _check_tiff_extent(path, chosen.pages)
            # uncompressed contiguous pixels are memory-mapped (in the file's byte order, made native when
            # read): a window is read without the rest
            mapped = chosen.dataoffset is not None
            dtype = np.dtype(dtype).newbyteorder("=")
            if not mapped:
                _check_chunk(path, chosen.keyframe.chunks, dtype, "tile/strip",
                             "save it tiled, e.g. tifffile.imwrite(..., tile=(512, 512))")
    except ImageReadError:
        raise
    except Exception as exc:
        raise ImageReadError(path, f"not a readable TIFF ({type(exc).__name__}: {exc})") from None
    index, colour, plane = _plane_index(shape, axes, str(path), channel, colour_axes=("s",))
    # the opener's path is absolute (the workers of a Dask cluster run in other directories); the name,
    # which identifies the run, is the one given, so a result made before resumes
    return ImageSource(str(path), _TiffOpener(str(path.absolute()), level, mapped), index, colour, plane, dtype)


def _check_chunk(path: Path, chunks, dtype, what: str, remedy: str) -> None:
    """Raise ImageReadError when one ``chunks``-shaped piece of ``dtype`` pixels, which reading any
    window in it decodes whole, is larger than ``MAX_CHUNK_BYTES``."""
    nbytes = math.prod(int(n) for n in chunks) * np.dtype(dtype).itemsize
    if nbytes > MAX_CHUNK_BYTES:
        size = "x".join(str(int(n)) for n in chunks)
        raise ImageReadError(path, f"one {what} is {size} {np.dtype(dtype)} pixels ({nbytes / 2**20:,.0f} MiB "
                             f"decoded), more than the {MAX_CHUNK_BYTES // 2**20} MiB out-of-core segmentation "
                             f"decodes at a time; it must be re-chunked: {remedy}")


def _check_tiff_extent(path: Path, pages) -> None:
    """Raise ImageReadError when a tile or strip lies (partly) past the end of the file."""
    size = path.stat().st_size
    for page in pages:
        if getattr(page, "dataoffsets", None) is None:
            continue
        offsets = np.asarray(page.dataoffsets, np.int64)
        counts = np.asarray(page.databytecounts, np.int64)
        ends = offsets + counts
        if len(ends) and (ends.max() > size or (counts == 0).any()):
            bad = int(np.argmax((ends > size) | (counts == 0)))
            raise ImageReadError(path, f"truncated: tile/strip {bad} of {len(ends)} ends at byte "
                                 f"{int(ends[bad])} but the file has {size} bytes")


class _TiffOpener:
    """Opens a TIFF in the process that reads it (picklable): a memory map of uncompressed
    contiguous pixels (``mapped``), else a zarr view of its tiles or strips."""

    def __init__(self, path: str, level: int, mapped: bool = False):
        self.path, self.level, self.mapped = path, level, mapped

    def __call__(self):
        import tifffile
        import zarr

        if self.mapped:
            return tifffile.memmap(self.path, level=self.level, mode="r")
        return zarr.open(tifffile.imread(self.path, aszarr=True, level=self.level), mode="r")


class _ZarrOpener:
    def __init__(self, path: str, key: str | None):
        self.path, self.key = path, key

    def __call__(self):
        import zarr

        node = zarr.open(self.path, mode="r")
        return node[self.key] if self.key else node


def _zarr_source(path: Path, level: int, channel: int | None = None) -> ImageSource:
    import zarr

    try:
        node = zarr.open(str(path), mode="r")
    except Exception as exc:
        raise ImageReadError(path, f"not a readable zarr store ({type(exc).__name__}: {exc})") from None
    key, axes = None, None
    if not hasattr(node, "shape"):  # a group: an OME-Zarr image (multiscales), else its one array
        key, axes = multiscale_level(path, dict(node.attrs), level)
        if key is None:
            arrays = sorted(name for name, _ in node.arrays())
            if len(arrays) != 1:
                raise ImageReadError(path, "is a zarr group without OME-Zarr multiscales metadata and "
                                     f"{len(arrays)} arrays; give the path of the array itself")
            key = arrays[0]
        try:
            node = node[key]
        except KeyError:
            raise ImageReadError(path, f"OME-Zarr metadata names level {key!r}, which is missing") from None
    shape = tuple(node.shape)
    axes = axes or _guess_axes(shape, channel)
    index, colour, plane = _plane_index(shape, axes, str(path), channel)
    _check_chunk(path, node.chunks, node.dtype, "zarr chunk",
                 "save the array with smaller chunks, e.g. 1024x1024")
    return ImageSource(str(path), _ZarrOpener(str(path.absolute()), key), index, colour, plane, node.dtype)


def _guess_axes(shape: tuple, channel: int | None = None) -> str:
    """Axis letters of an array without metadata: ``...yx``, or ``...yxc`` for a colour last axis
    (any last axis of a 3D or larger array when a nucleus ``channel`` is chosen)."""
    if len(shape) >= 3 and (shape[-1] in (3, 4) or channel is not None):
        return "q" * (len(shape) - 3) + "yxc"
    return "q" * max(0, len(shape) - 2) + "yx"[-min(len(shape), 2):]


def _plane_index(shape: tuple, axes: str, name: str, channel: int | None = None,
                 colour_axes: tuple[str, ...] = _COLOUR_AXES) -> tuple[tuple, int | None, tuple]:
    """The index template reading one 2D (colour) plane: ``"y"``/``"x"`` for the spatial axes,
    0 for single planes, ``slice(None)`` for colour (the nucleus ``channel`` when one is chosen:
    the plane is then grey); the colour axis of a read region; its shape. Of the channel axes, those of
    ``colour_axes`` with 3 or 4 planes may be colour (a TIFF's are its samples ``s`` alone: its ``c``
    axis holds separate channels).

    Raises InvalidImageError for anything else than one (colour) plane, or a channel the image
    does not have.
    """
    channel_axes = [i for i, a in enumerate(axes) if a in _COLOUR_AXES and shape[i] > 1] if channel is not None else []
    chosen = channel_axes[0] if channel_axes else None
    if channel is not None:
        check_channel(channel, 1 if chosen is None else shape[chosen], name)
    if len(axes) != len(shape) or "y" not in axes or "x" not in axes or axes.index("x") < axes.index("y"):
        raise InvalidImageError(f"{name}: cannot tell the rows and columns of an array of shape {shape}"
                                + (f" (axes {axes!r})" if axes else ""))
    index, colour, plane, kept = [], None, [], 0
    for i, (n, letter) in enumerate(zip(shape, axes)):
        if i == chosen:
            index.append(channel)
        elif letter in "yx":
            index.append(letter)
            plane.append(n)
            kept += 1
        elif letter in colour_axes and n in (3, 4) and colour is None:
            index.append(slice(None))
            colour = kept
            kept += 1
        elif n == 1:
            index.append(0)
        elif letter in _COLOUR_AXES:  # channels, and no channel chosen: as segment() in memory says
            raise InvalidImageError(
                f"{name}: {n} channels (axes {axes!r}): choose the nucleus channel (channel=N, --channel N, "
                f"or the widgets' Nucleus channel; 0 = first)")
        else:
            raise InvalidImageError(
                f"{name}: has shape {tuple(shape)} (axes {axes!r}); out-of-core segmentation takes one "
                "2D plane (Y, X) or a colour image (Y, X, 3|4): save the plane to segment alone")
    if min(plane) < 8:
        raise InvalidImageError(f"{name}: the image is too small ({plane[0]}x{plane[1]} pixels)")
    if colour is not None:
        plane.append(shape[[i for i, v in enumerate(index) if isinstance(v, slice)][0]])
    return tuple(index), (colour if colour is not None and colour != kept - 1 else None), tuple(plane)


def describe_source(source: ImageSource) -> dict:
    """What identifies a source (recorded in the output, checked on resume): name, shape, dtype,
    a hash of 9 small windows spread over the image (so another array of the same shape is another
    image, at the cost of reading 9 chunks), and a file's size and modification time."""
    info = {"name": source.name, "shape": list(source.shape), "dtype": str(source.dtype),
            "sample": sample_hash(source)}
    path = Path(source.name)
    if source._opener is not None and path.is_file():
        stat = path.stat()
        info.update(size=stat.st_size, mtime=round(stat.st_mtime, 3))
    return info


def sample_hash(source: ImageSource, side: int = 16) -> str:
    """SHA-1 of the pixels of 3 x 3 windows of ``side`` pixels spread over ``source``."""
    import hashlib

    digest = hashlib.sha1()
    h, w = source.shape[:2]
    for fy in (0.1, 0.5, 0.9):
        for fx in (0.1, 0.5, 0.9):
            y, x = min(int(fy * h), h - side) if h > side else 0, min(int(fx * w), w - side) if w > side else 0
            digest.update(np.ascontiguousarray(source.read(slice(y, y + side), slice(x, x + side))).tobytes())
    return digest.hexdigest()
