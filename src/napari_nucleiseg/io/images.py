"""Read images and label images: PNG, JPEG, TIFF/OME-TIFF and the DSB folder layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import ImageReadError

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def is_image_file(path) -> bool:
    """True if the file name has a suffix this package reads."""
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def is_dsb_folder(path) -> bool:
    """True for a DSB sample folder: ``<id>/images/<id>.png`` (with optional ``masks/``)."""
    p = Path(path)
    return p.is_dir() and (p / "images").is_dir() and any((p / "images").glob("*.png"))


def read_image(path) -> np.ndarray:
    """Read an image file into a NumPy array.

    Parameters
    ----------
    path : str or Path
        PNG, JPEG or TIFF (8/16/32-bit, multi-page and OME-TIFF give a stack).

    Returns
    -------
    numpy.ndarray
        ``(Y, X)``, ``(Y, X, C)`` for RGB(A) (and two-channel TIFFs), or ``(Z, Y, X)`` for
        stacks. A grey PNG with alpha gives ``(Y, X)``.

    Raises
    ------
    ImageReadError
        If the file is missing, empty, of an unsupported type or corrupt.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file not found")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if not is_image_file(path):
        raise ImageReadError(path, f"unsupported file type '{path.suffix}' (use TIFF, PNG or JPEG)")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty")
    try:
        if path.suffix.lower() in (".tif", ".tiff"):
            import logging

            import tifffile

            log = logging.getLogger("tifffile")
            was_disabled, log.disabled = log.disabled, True  # its warnings would reach stderr
            try:
                data = tifffile.imread(path)
            finally:
                log.disabled = was_disabled
        else:
            import imageio.v3 as iio

            data = iio.imread(path)
    except Exception as exc:  # the readers raise many types for corrupt data
        raise ImageReadError(path, f"cannot be decoded ({type(exc).__name__}: {exc})") from None
    data = np.asarray(data)
    if data.ndim < 2 or data.size == 0:
        raise ImageReadError(path, f"no 2D image data found (shape {data.shape}): corrupt or truncated file?")
    if data.ndim > 3:
        data = np.squeeze(data)
    if data.ndim == 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim == 3 and data.shape[-1] == 2 and path.suffix.lower() not in (".tif", ".tiff"):
        data = data[..., 0]  # a PNG in grey + alpha: the alpha channel is not image data
    return data


def read_labels(path) -> np.ndarray:
    """Read a label image (0 = background, 1..N = nuclei) as a 2D integer array."""
    lab = read_image(path)
    if lab.ndim == 3 and lab.shape[-1] in (3, 4):
        lab = lab[..., 0]
    return lab.astype(np.int32)


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
        labels[m > 0] = i
    return image, labels
