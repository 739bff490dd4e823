"""bioimage.io model packages (spec 0.5): export a zoo model (``export``) and import a package as a
user model (``package_import``); the standalone architecture source a package carries (``source``).

``bioimageio.spec`` / ``bioimageio.core`` are the optional extra ``napari-nucleiseg[bioimageio]``:
they are imported only when a package is written, checked or tested (``require``), never by
``import napari_nucleiseg``. A model imported from a package runs without them.
"""

from __future__ import annotations

import importlib

#: The one line shown when the extra is missing.
BIOIMAGEIO_HINT = ("bioimage.io support needs the optional extra: pip install 'napari-nucleiseg[bioimageio]' "
                   "(bioimageio.spec and bioimageio.core)")


def require(module: str = "bioimageio.spec"):
    """``module`` (``"bioimageio.spec"`` or ``"bioimageio.core"``), imported now.

    Raises
    ------
    errors.BioimageioMissing
        One line saying how to install the extra.
    """
    from ..errors import BioimageioMissing

    try:
        return importlib.import_module(module)
    except ImportError:
        raise BioimageioMissing(BIOIMAGEIO_HINT) from None


def available() -> bool:
    """Whether the bioimage.io extra is installed."""
    try:
        require("bioimageio.core")
    except Exception:
        return False
    return True
