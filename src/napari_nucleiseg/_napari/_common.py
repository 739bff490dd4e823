"""Small Qt helpers shared by the widgets: hints, collapsible sections, workers that never crash."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from magicgui.widgets import CheckBox, ComboBox, Container, FloatSpinBox, Label
from qtpy.QtCore import QEvent, QObject, QSize, Qt, Signal
from qtpy.QtWidgets import QScrollArea, QSizePolicy

from ..errors import NucleisegError
from .proxy import unproxied

log = logging.getLogger(__name__)

#: Widest a dock widget asks to be, so that the canvas keeps most of a 1280 px screen.
DOCK_WIDTH = 380


class ProgressRelay(QObject):
    """Carries progress objects from a worker thread to the GUI thread (queued Qt signal)."""

    progressed = Signal(object)


def hint(text: str) -> Label:
    """A grey, word-wrapped, left-aligned explanatory label."""
    lab = Label(value=text)
    lab.native.setWordWrap(True)
    lab.native.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    lab.native.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.MinimumExpanding)
    lab.native.setStyleSheet("color: gray; font-size: 11px;")
    return lab


class StatusLabel(Label):
    """A word-wrapped label that always shows every line of its text (set while a worker runs,
    a new text is not always laid out again, so it asks for its wrapped height itself)."""

    @property
    def value(self):
        return Label.value.fget(self)

    @value.setter
    def value(self, text) -> None:
        Label.value.fset(self, text)
        q = self.native
        q.setMinimumHeight(0)
        q.setMinimumHeight(max(0, q.heightForWidth(max(q.width(), 200))) if q.text() else 0)


def status_label() -> Label:
    """A word-wrapped label for what a run is doing (never widens the dock, shows every line)."""
    lab = StatusLabel(value="")
    lab.native.setWordWrap(True)
    lab.native.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.MinimumExpanding)
    return lab


def section(title: str, widgets: list, expanded: bool = False, labels: bool = True) -> Container:
    """A collapsible section ("Advanced...") holding (labelled) ``widgets``; collapsed by default."""
    from superqt import QCollapsible

    inner = Container(widgets=widgets, labels=labels)
    inner.margins = (0, 0, 0, 0)
    fold = QCollapsible(title)
    fold.setDuration(0)
    fold.setCollapsedIcon("▶")
    fold.setExpandedIcon("▼")
    fold.addWidget(inner.native)
    fold.layout().setContentsMargins(0, 0, 0, 0)
    if expanded:
        fold.expand(animate=False)
    box = Container(labels=False)
    box.margins = (0, 0, 0, 0)
    box.native.layout().addWidget(fold)
    box.fold, box.inner = fold, inner
    return box


def form(*widgets) -> Container:
    """Labelled fields (label column on the left), without margins."""
    box = Container(labels=True, widgets=list(widgets))
    box.margins = (0, 0, 0, 0)
    return box


def row(*widgets) -> Container:
    """Widgets side by side (buttons), without margins."""
    box = Container(layout="horizontal", labels=False, widgets=list(widgets))
    box.margins = (0, 0, 0, 0)
    return box


class _FittingScroll(QScrollArea):
    """A vertical scroll area as wide as its content needs (at most ``max_width``), a few rows high at least."""

    MIN_HEIGHT = 160

    def __init__(self, max_width: int):
        super().__init__()
        self.max_width = max_width

    def setWidget(self, body) -> None:  # noqa: N802 (Qt's name)
        super().setWidget(body)
        body.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        # the content's size changed (text wrapped, a section opened): let the dock ask again
        if obj is self.widget() and event.type() == QEvent.Type.LayoutRequest:
            self.updateGeometry()
        return super().eventFilter(obj, event)

    def _width(self, content: int) -> int:
        return min(self.max_width, content + self.verticalScrollBar().sizeHint().width() + 2)

    def minimumSizeHint(self) -> QSize:
        body = self.widget()
        w = body.minimumSizeHint().width() if body is not None else 0
        return QSize(self._width(w), self.MIN_HEIGHT)

    def sizeHint(self) -> QSize:
        body = self.widget()
        hint = body.sizeHint() if body is not None else QSize(0, 0)
        return QSize(self._width(max(hint.width(), body.minimumSizeHint().width() if body else 0)),
                     hint.height() + 2)


#: layer names longer than this are shown shortened in the middle in a docked list (``short_names``)
SHOWN_NAME = 25


def short_names(layers) -> list[tuple[str, object]]:
    """``(shown name, layer)`` choices whose names keep both ends within ``SHOWN_NAME`` characters, as
    napari's layer list does: 'cells nuclei' and 'cells nuclei (corrected)' differ at the end, which a
    narrow box would cut off. Full names where two shortened ones would be the same."""
    def short(name: str) -> str:
        return name if len(name) <= SHOWN_NAME else f"{name[:8]}\u2026{name[-(SHOWN_NAME - 9):]}"

    shown = [short(layer.name) for layer in layers]
    if len(set(shown)) < len(shown):
        shown = [layer.name for layer in layers]
    return list(zip(shown, layers))


def _name_in_tooltip(combo) -> None:
    """Keep the whole name of the layer ``combo`` shows in its tooltip, above its hint (a combo of
    other values keeps the tooltip its widget gives it)."""
    hint = combo.toolTip()

    def show(_text: str = "") -> None:
        name = getattr(combo.currentData(), "name", None)
        if isinstance(name, str):
            combo.setToolTip(f"{name}\n\n{hint}" if hint else name)

    show()
    combo.currentTextChanged.connect(show)


def make_scrollable(container: Container, width: int = DOCK_WIDTH) -> None:
    """Move everything ``container`` shows into a vertical scroll area (call it once, after building).

    napari docks a magicgui widget's inner ``native`` QWidget, so magicgui's own
    ``scrollable=True`` is lost in the dock; the scroll area here lives inside ``native``. A tall
    widget then fits a small screen (its minimum height is a few rows) and the dock asks for
    at most ``width`` pixels.
    """
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QComboBox, QFrame, QVBoxLayout, QWidget

    for combo in container.native.findChildren(QComboBox):  # long layer names elide, never widen the dock
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.setMinimumContentsLength(10)
        # 'cells nuclei' and 'cells nuclei (corrected)' differ at the end: the list keeps both ends of a
        # name, and the tooltip gives the whole name chosen
        combo.view().setTextElideMode(Qt.TextElideMode.ElideMiddle)
        _name_in_tooltip(combo)
    outer = container.native.layout()
    body = QWidget()
    inner = QVBoxLayout(body)
    inner.setContentsMargins(outer.contentsMargins())
    inner.setSpacing(outer.spacing())
    order = [outer.itemAt(i).widget() for i in range(outer.count())]  # None: a stretch
    for w in order:
        if w is not None:
            outer.removeWidget(w)  # deletes its layout item, which would keep the widget's size cache
    while outer.count():
        outer.takeAt(0)
    for w in order:
        if w is None:
            inner.addStretch(1)
        else:
            inner.addWidget(w)
    scroll = _FittingScroll(width)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
    scroll.setWidget(body)
    scroll.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    container.scroll_area = scroll


def model_choices(_widget=None) -> list[tuple[str, str]]:
    """``(shown name, model name)`` for every zoo model; the user's own are marked ``[user]``."""
    from .. import zoo

    try:
        return [(e.name + (" [user]" if e.user else ""), e.name) for e in zoo.list_models()]
    except OSError:
        return []


def diameter_box() -> FloatSpinBox:
    """Nucleus-diameter field for ``segment(diameter=...)``; its lowest value (0) reads "auto"."""
    box = FloatSpinBox(label="Nucleus diameter (px)", min=0.0, max=1000.0, step=1.0, value=0.0,
                       tooltip="Typical nucleus diameter in pixels. Nuclei larger than the model was trained "
                               "on are segmented on a shrunken copy of the image, nuclei under 9 px on an "
                               "enlarged one (results stay full size). 'auto' measures it on a first pass; "
                               "type a value from 9 to 20 px (the model's size) to never rescale.")
    box.native.setSpecialValueText("auto")
    return box


def denoise_box() -> CheckBox:
    """``segment(denoise=...)``: smooth the input of images noisier than the training images."""
    return CheckBox(text="Smooth noisy images", value=True,
                    tooltip="When an image is noisier than the images the model learnt from, or so dim "
                            "that it spans only a few grey levels, smooth it a little before the model sees "
                            "it (clean images are never changed). The noise level found is in the result's "
                            "settings.")


#: ``channel_box`` choices: (label, channel), -1 for all channels
CHANNELS = [("All channels", -1), ("0 (red)", 0), ("1 (green)", 1), ("2 (blue)", 2), ("3", 3)]


def channel_box() -> ComboBox:
    """``segment(channel=...)``: the nucleus channel of a multichannel image (``channel_value``)."""
    return ComboBox(label="Nucleus channel", choices=CHANNELS, value=-1,
                    tooltip="For a colour or multichannel image whose nuclei are in one channel (e.g. DAPI in "
                            "the blue of a composite): segment and measure that channel alone. 'All' uses the "
                            "brightest channel of fluorescence and the stain of bright-field images.")


def channel_value(box: ComboBox) -> int | None:
    """The ``channel`` option of a ``channel_box`` (None: all channels)."""
    return None if box.value is None or box.value < 0 else int(box.value)


def even_light_box() -> CheckBox:
    """``segment(even_light=...)``: even out the light of an unevenly lit bright-field image."""
    return CheckBox(text="Even out uneven light", value=True,
                    tooltip="When a bright-field or stained image is lit unevenly (a darker side or corners), "
                            "even out its light before the model sees it (evenly lit images are never "
                            "changed). How uneven it was is in the result's settings.")


def diameter_value(box: FloatSpinBox) -> float | str:
    """``"auto"`` for 0, else the diameter in pixels."""
    return box.value if box.value > 0 else "auto"


@dataclass
class WorkFailed:
    """What a worker hands back instead of raising: one line for the user."""

    message: str


def keep_chosen(box, renamed: dict | None = None) -> None:
    """Re-read a model box's choices; a chosen model that was renamed (``renamed``: old -> new name)
    stays chosen under its new name, without the ``changed`` signal (the user's settings stay)."""
    before = box.value
    new = (renamed or {}).get(before)
    if new is None:
        box.reset_choices()
        return
    with box.changed.blocked():
        box.reset_choices()
        if new in box.choices:
            box.value = new


def shown_slice(viewer, layer) -> int:
    """The plane of ``layer``'s first axis shown in ``viewer`` (in the layer's own data coordinates:
    stacks of different extent or scale each have their own), 0 when it has none."""
    try:
        return int(round(float(layer.world_to_data(viewer.dims.point)[0])))
    except (IndexError, ValueError, TypeError, AttributeError):
        return 0


def guarded(fn: Callable, what: str) -> Callable:
    """``fn`` made never to raise: an exception comes back as :class:`WorkFailed` (``"<what>: reason"``).

    napari turns an exception in a worker into a notification with a traceback (and, without its
    exception hook, an abort); returning it instead lets the widget show it once, readably.
    """
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (NucleisegError, ValueError, KeyError, OSError, TypeError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            return WorkFailed(f"{what}: {msg}")
        except Exception as exc:  # unexpected: logged with its traceback, shown as one line
            log.exception("%s", what)
            return WorkFailed(f"{what}: {type(exc).__name__}: {exc}")

    return run


def start_worker(fn: Callable, *args, what: str, on_returned: Callable, on_error: Callable[[str], None],
                 on_finished: Callable | None = None, viewer=None, stop: Callable | None = None,
                 task: str = "", **kwargs):
    """Run ``fn(*args, **kwargs)`` in a napari thread worker that can never crash the app.

    Parameters
    ----------
    fn : callable
        The work (no Qt); an exception it raises reaches ``on_error`` as one line.
    what : str
        Start of that line, e.g. ``"Cannot evaluate"``.
    on_returned : callable
        Called in the GUI thread with the result.
    on_error : callable
        Called in the GUI thread with the message (the widget shows it once).
    on_finished : callable, optional
        Called in the GUI thread after either.
    viewer, stop, task : optional
        With these, the job is one of ``viewer``'s running tasks (described by ``task``): closing
        its window asks first, then calls ``stop`` (the widget's Cancel) so the job ends with it.
        The callbacks are skipped once their widget is gone with the window.

    Returns
    -------
    napari.qt.threading.FunctionWorker
        Already started.
    """
    from napari.qt.threading import create_worker

    def returned(value):
        if isinstance(value, WorkFailed):
            on_error(value.message)
            return
        try:
            on_returned(value)
        except Exception as exc:  # showing the result failed (a layer napari refuses): one line, no crash
            log.exception("%s: showing the result failed", what)
            on_error(f"{what}: {type(exc).__name__}: {exc}")

    worker = create_worker(guarded(fn, what), *args, _start_thread=False, _ignore_errors=True, **kwargs)
    worker.returned.connect(_while_alive(returned))
    if on_finished is not None:
        worker.finished.connect(_while_alive(on_finished))
    done = _running_task(viewer, stop, task or what)
    if done is not None:
        worker.finished.connect(done)
    worker.start()
    return worker


def _while_alive(callback: Callable) -> Callable:
    """``callback``, silent once the Qt widgets it updates were deleted (the window closed first)."""
    def call(*args):
        try:
            return callback(*args)
        except RuntimeError as exc:
            if "has been deleted" not in str(exc):
                raise
            return None
    return call


def _running_task(viewer, stop: Callable | None, description: str) -> Callable | None:
    """Register a job with ``viewer``'s window as a running task whose cancel calls ``stop``; returns
    what marks it done (None where napari has no such list: the private API is looked up, not assumed)."""
    window = unproxied(getattr(viewer, "window", None))
    register = getattr(window, "_register_task_status", None)
    update = getattr(window, "_update_task_status", None)
    if stop is None or register is None or update is None:
        return None
    from napari.utils.task_status import Status

    def cancel():
        _while_alive(stop)()
        return True

    task_id = register("napari-nucleiseg", Status.BUSY, description, cancel_callback=cancel)
    return lambda: update(task_id, Status.COMPLETED, "")
