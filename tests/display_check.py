"""Can Qt open a window here? Checked once, in a child process, before any QApplication exists.

Without Xvfb or Qt's xcb libraries, creating the QApplication aborts the whole pytest process
(``Fatal Python error: Aborted``) with no output; the napari tests are skipped instead, with one
line naming what is missing and how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

#: The reason the napari tests skip when Qt cannot open a window (allowed by ``tests/conftest.py``).
DISPLAY_ABSENT = "no usable display for the napari tests"
INSTALL = "scripts/install_system_packages.sh (as root, or with sudo; Debian/Ubuntu)"

_PROBE = "from qtpy.QtWidgets import QApplication; app = QApplication([]); print('display ok')"


def _package_of(soname: str) -> str:
    """Debian package of a shared library, e.g. ``libxcb-icccm.so.4`` -> ``libxcb-icccm4``."""
    m = re.match(r"(lib[\w.+-]*?)\.so\.(\d+)", soname)
    if not m:
        return soname
    name, version = m.group(1).lower(), m.group(2)
    return f"{name}{'-' if name[-1].isdigit() else ''}{version}"


def missing_for_qt(timeout: float = 60.0) -> str | None:
    """None when a QApplication starts here; else what is missing (Xvfb, libraries), in words."""
    if os.environ.get("QT_QPA_PLATFORM", "") in ("offscreen", "minimal"):
        return None
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        # pytest-xvfb sets DISPLAY when it finds Xvfb
        return "a display: DISPLAY is not set" + ("" if shutil.which("Xvfb") else " and Xvfb is not installed (xvfb)")
    env = {**os.environ, "QT_DEBUG_PLUGINS": "1"}
    try:
        proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, env=env,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"a Qt window did not open within {timeout:.0f} s"
    if proc.returncode == 0 and "display ok" in proc.stdout:
        return None
    libs = sorted({_package_of(s) for s in re.findall(r"(lib[\w.+-]+\.so[.\d]*): cannot open shared object",
                                                      proc.stderr)})
    if "could not connect to display" in proc.stderr:
        return f"a display: cannot connect to DISPLAY={os.environ.get('DISPLAY', '')}"
    if libs:
        return "Qt's xcb platform libraries " + " ".join(libs)
    if "xcb-cursor0" in proc.stderr:
        return "Qt's xcb platform library libxcb-cursor0"
    last = [line for line in proc.stderr.splitlines() if line.strip()][-1:] or [f"exit status {proc.returncode}"]
    return f"a working Qt display ({last[0].strip()[:160]})"
