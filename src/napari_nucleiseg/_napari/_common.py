"""Small Qt helpers shared by the widgets."""

from __future__ import annotations

from magicgui.widgets import FloatSpinBox, Label
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


def diameter_box() -> FloatSpinBox:
    """Nucleus-diameter field for ``segment(diameter=...)``; its lowest value (0) reads "auto"."""
    box = FloatSpinBox(label="Nucleus diameter (px)", min=0.0, max=1000.0, step=1.0, value=0.0,
                       tooltip="Typical nucleus diameter in pixels. Nuclei larger than the model was trained "
                               "on are segmented on a shrunken copy of the image (results stay full size). "
                               "'auto' measures it on a first pass; type a value at or below the model's "
                               "(about 20 px) to never rescale.")
    box.native.setSpecialValueText("auto")
    return box


def diameter_value(box: FloatSpinBox) -> float | str:
    """``"auto"`` for 0, else the diameter in pixels."""
    return box.value if box.value > 0 else "auto"
