"""Read images and label images: PNG, JPEG, TIFF/OME-TIFF and the DSB folder layout."""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path

import numpy as np

from ..errors import ImageReadError, ImageTooLargeError, InvalidImageError, first_line
from ..memory import check_fits

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def is_image_file(path) -> bool:
    """True if the file name has a suffix this package reads."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def is_dsb_folder(path) -> bool:
    """True for a DSB sample folder: ``<id>/images/<id>.png`` (with optional ``masks/``)."""
    p = Path(path)
    return p.is_dir() and (p / "images").is_dir() and any((p / "images").glob("*.png"))


def tiff_header(path) -> tuple[tuple[int, ...], np.dtype, str]:
    """Shape, pixel type and axes (tifffile's letters: ``S`` colour samples, ``C`` channels...) of
    a TIFF's first series, from its header only (tifffile's own warnings silenced)."""
    import tifffile

    with quiet_tifffile(), tifffile.TiffFile(path) as tif:
        series = tif.series[0]
        return tuple(series.shape), np.dtype(series.dtype), colour_axes(tif, series.axes)


#: OME's colours (signed RGBA integers) and channel names of an RGB image stored as three grey planes
_RGB_COLOURS = ("-16776961", "16711935", "65535")
_RGB_NAMES = (("red", "green", "blue"), ("r", "g", "b"))


def colour_axes(tif, axes: str) -> str:
    """``axes`` of a TIFF's first series, its channel axis ``C`` spelt ``S`` (colour, as an RGB TIFF's
    samples) when the OME metadata names or colours its three channels red, green and blue (an RGB
    image stored as three grey planes, as Bio-Formats' ``bfconvert -separate`` writes it)."""
    if "C" not in axes or not tif.is_ome:
        return axes
    xml = tif.ome_metadata or ""
    channels = [dict(re.findall(r'(\w+)="([^"]*)"', c)) for c in re.findall(r"<(?:\w+:)?Channel\b([^>]*)>", xml)]
    if len(channels) != 3:
        return axes
    names = tuple(c.get("Name", "").strip().lower() for c in channels)
    colours = tuple(c.get("Color", "").strip() for c in channels)
    return axes.replace("C", "S") if colours == _RGB_COLOURS or names in _RGB_NAMES else axes


def image_header(path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and pixel type of an image file as stored, read from its header (nothing decoded).

    Raises
    ------
    ImageReadError
        If the file cannot be read as an image.
    """
    return _header(_checked_path(path))[:2]


def _header(path: Path) -> tuple[tuple[int, ...], np.dtype, str]:
    """``image_header`` and a TIFF's axes (``tiff_header``; "" for other formats)."""
    try:
        if _is_tiff(path):
            return tiff_header(path)
        import imageio.v3 as iio

        props = iio.improps(path)
        return tuple(props.shape), np.dtype(props.dtype), ""
    except Exception as exc:  # the readers raise many types for corrupt data
        raise _decode_error(path, exc) from None


def _decode_error(path: Path, exc: Exception) -> ImageReadError:
    """One line for a file the readers could not decode (imageio's own message runs over several
    lines and suggests installing plugins)."""
    if "Could not find a backend" in str(exc):
        return ImageReadError(path, f"cannot be decoded: not a valid {path.suffix.lstrip('.').upper()} file "
                                    "(corrupt, or another format under this name)")
    return ImageReadError(path, f"cannot be decoded ({type(exc).__name__}: {first_line(exc, 1000)})")


def _is_tiff(path: Path) -> bool:
    return path.suffix.lower() in (".tif", ".tiff")


@contextlib.contextmanager
def quiet_tifffile():
    """tifffile's warnings about a broken file silenced (they would reach stderr; the error raised
    says it once)."""
    log = logging.getLogger("tifffile")
    was_disabled, log.disabled = log.disabled, True
    try:
        yield
    finally:
        log.disabled = was_disabled


def _checked_path(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if not is_image_file(path):
        raise ImageReadError(path, f"unsupported file type '{path.suffix}' (use TIFF, PNG or JPEG)")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty")
    return path


def _read_tiff(path: Path, channels: bool = False) -> np.ndarray:
    """A TIFF's first series, its colour or channel axis (``S``, or ``C`` of 2-4, of any length with
    ``channels``) moved last."""
    import tifffile

    shape, dtype, axes = tiff_header(path)
    check_fits(shape, dtype, str(path), segment=False)
    with tifffile.TiffFile(path) as tif:
        data = tif.series[0].asarray()
        alpha = tuple(tif.pages[0].extrasamples or ()) in ((1,), (2,))  # associated or unassociated alpha
    channel = _channel_axis(shape, axes, channels)
    if channel is not None and data.ndim == len(axes) and channel != data.ndim - 1:
        data = np.moveaxis(data, channel, -1)
    if alpha and channel is not None and axes[channel] == "S" and data.shape[-1] == 2:
        data = data[..., 0]  # grey and alpha: the alpha sample is not image data (as in a PNG)
    return data


def _channel_axis(shape: tuple[int, ...], axes: str, channels: bool) -> int | None:
    """The axis ``_read_tiff`` moves last: colour samples ``S``, or channels ``C`` (of 2-4, or any
    length with ``channels``)."""
    return next((i for i, a in enumerate(axes) if a == "S" or (a == "C" and (channels or 2 <= shape[i] <= 4))),
                None)


def _tiff_has_channels(path: Path) -> bool:
    """True when a TIFF's first series has a colour or channel axis of more than one plane."""
    shape, _, axes = tiff_header(path)
    return any(a in "CS" and n > 1 for a, n in zip(axes, shape))


def many_channels(shape: tuple[int, ...], axes: str) -> int | None:
    """The length of a TIFF's channel axis (``C``, not the colour samples ``S`` of an RGB TIFF) of three
    or more, which holds separate channels (neither a colour image nor a stack of planes); else None."""
    return next((n for a, n in zip(axes, shape) if a == "C" and n > 2), None)


def _refuse_many_channels(path: Path, shape: tuple[int, ...], axes: str) -> None:
    """To be segmented, one of ``many_channels`` must be chosen (two channels are refused later, as for
    any two-channel array)."""
    n = many_channels(shape, axes)
    if n is not None:
        raise InvalidImageError(f"{path}: {n} channels (axes {axes}): choose the nucleus channel "
                                f"(channel=0 to {n - 1}; --channel N on the command line)")


def read_image(path, for_segmentation: bool = False, channels: bool = False) -> np.ndarray:
    """Read an image file into a NumPy array.

    Parameters
    ----------
    path : str or Path
        PNG, JPEG or TIFF (8/16/32-bit, multi-page and OME-TIFF give a stack; a channels-first
        colour TIFF, ``(3, Y, X)`` with its samples or channels marked so, gives ``(Y, X, 3)``).
    for_segmentation : bool
        Refuse, from the header and before decoding, an image whose segmentation cannot fit in
        memory (``memory.check_fits``); any image whose pixels alone cannot fit is refused.
    channels : bool
        A TIFF's channel axis (``C``) is moved last whatever its length (for a nucleus ``channel``
        chosen among many; without it only 2-4 channels are, more are read as a stack).

    Returns
    -------
    numpy.ndarray
        ``(Y, X)``, ``(Y, X, C)`` for RGB(A) (and two-channel TIFFs), or ``(Z, Y, X)`` for
        stacks. A grey PNG with alpha gives ``(Y, X)``.

    Raises
    ------
    ImageReadError
        If the file is missing, empty, of an unsupported type or corrupt.
    errors.InvalidImageError
        With ``for_segmentation`` and not ``channels``: a TIFF of three or more channels that are
        not an RGB image's colour samples (one must be chosen).
    errors.ImageTooLargeError
        If it cannot fit in memory (the message points to out-of-core segmentation).
    """
    path = _checked_path(path)
    if for_segmentation:
        shape, dtype, axes = _header(path)
        channel = _channel_axis(shape, axes, channels)
        if channel is None:
            check_fits(shape, dtype, str(path), colour_last=None if not axes else False)
        else:  # laid out as read: the colour or channel axis last
            check_fits(shape[:channel] + shape[channel + 1:] + (shape[channel],), dtype, str(path), colour_last=True)
        if not channels:
            _refuse_many_channels(path, shape, axes)
    try:
        if _is_tiff(path):
            with quiet_tifffile():
                data = _read_tiff(path, channels)
        else:
            import imageio.v3 as iio

            data = iio.imread(path)
    except ImageTooLargeError:
        raise
    except Exception as exc:  # the readers raise many types for corrupt data
        raise _decode_error(path, exc) from None
    data = np.asarray(data)
    if data.ndim < 2 or data.size == 0:
        raise ImageReadError(path, f"no 2D image data found (shape {data.shape}): corrupt or truncated file?")
    if data.ndim > 3:
        data = np.squeeze(data)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if channels and data.ndim == 3 and _is_tiff(path) and not _tiff_has_channels(path):
        data = data[..., None]  # a grey stack (Z, Y, X): with a channel chosen, its planes have one
    if data.ndim == 3 and data.shape[-1] == 2 and not _is_tiff(path):
        data = data[..., 0]  # a PNG in grey + alpha: the alpha channel is not image data
    return data


def as_labels(data: np.ndarray, what: str = "labels") -> np.ndarray:
    """Label data (0 = background, 1..N = nuclei) as int32, refusing what is not labels.

    Raises
    ------
    InvalidImageError
        For fractional, NaN, negative or too-large values (one line naming ``what``), instead of
        truncating them into labels.
    """
    data = np.asarray(data)
    if data.dtype == bool:
        return data.astype(np.int32)
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        raise InvalidImageError(f"{what}: pixel type {data.dtype} is not a label image")
    if data.size and np.issubdtype(data.dtype, np.floating):
        if not np.all(np.isfinite(data)):
            raise InvalidImageError(f"{what}: contains NaN or infinite values; labels are whole numbers")
        if np.any(data != np.round(data)):
            raise InvalidImageError(f"{what}: contains fractional values; labels are whole numbers "
                                    "(0 = background), not probabilities")
    if data.size and (data.min() < 0 or data.max() > np.iinfo(np.int32).max):
        raise InvalidImageError(f"{what}: values must be 0 (background) to {np.iinfo(np.int32).max}, "
                                f"not {data.min()}..{data.max()}")
    return data.astype(np.int32)


def read_labels(path) -> np.ndarray:
    """Read a label image (0 = background, 1..N = nuclei) as a 2D integer array.

    Raises
    ------
    ImageReadError
        If the file cannot be read, or holds fractional, NaN or negative values (``as_labels``).

    Notes
    -----
    A colour label image (one colour per nucleus, black background) gets one label per colour;
    one whose channels are equal is read from its first.
    """
    lab = read_image(path)
    if lab.ndim == 3 and lab.shape[-1] in (3, 4):
        lab = _colour_labels(lab[..., :3])
    try:
        return as_labels(lab)
    except InvalidImageError as exc:
        raise ImageReadError(path, str(exc).removeprefix("labels: ")) from None


def _colour_labels(rgb: np.ndarray) -> np.ndarray:
    """One label per colour of an RGB label image (black: background), numbered 1..N."""
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    if not np.issubdtype(rgb.dtype, np.integer) or rgb.min() < 0 or rgb.max() >= 2**21:
        return rgb[..., 0]  # as_labels says what is wrong with it
    flat = rgb.reshape(-1, 3).astype(np.uint64)
    codes = (flat[:, 0] << np.uint64(42)) | (flat[:, 1] << np.uint64(21)) | flat[:, 2]
    _, ids = np.unique(codes, return_inverse=True)
    ids = ids.reshape(rgb.shape[:2]).astype(np.int64)
    return ids if codes.min() == 0 else ids + 1  # black, the lowest code, is 0


def read_dsb_folder(path) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a DSB sample folder (``images/<id>.png`` + ``masks/*.png``, one mask per nucleus).

    Returns
    -------
    image : numpy.ndarray
    labels : numpy.ndarray or None
        int32 instance labels built from the masks (in sorted file order), or None without masks.
    """
    p = Path(path)
    if not is_dsb_folder(p):
        raise ImageReadError(p, "not a DSB sample folder (expected images/<id>.png)")
    image = read_image(sorted((p / "images").glob("*.png"))[0])
    mask_files = sorted((p / "masks").glob("*.png")) if (p / "masks").is_dir() else []
    if not mask_files:
        return image, None
    labels = np.zeros(image.shape[:2], np.int32)
    for i, f in enumerate(mask_files, start=1):
        m = read_image(f)
        if m.ndim == 3:
            m = m[..., 0]
        if m.shape != labels.shape:
            raise ImageReadError(f, f"mask of {m.shape[0]}x{m.shape[1]} pixels for an image of "
                                    f"{labels.shape[0]}x{labels.shape[1]}")
        labels[m > 0] = i
    return image, labels
