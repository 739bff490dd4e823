"""Small Qt helpers shared by the widgets."""

from __future__ import annotations

from magicgui.widgets import Label
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import QSizePolicy


class ProgressRelay(QObject):
    """Carries progress objects from a worker thread to the GUI thread (queued Qt signal)."""

    progressed = Signal(object)


def hint(text: str) -> Label:
    """A grey, word-wrapped, left-aligned explanatory label."""
    lab = Label(value=text)
    lab.native.setWordWrap(True)
    lab.native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    lab.native.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    lab.native.setStyleSheet("color: gray; font-size: 11px;")
    return lab
