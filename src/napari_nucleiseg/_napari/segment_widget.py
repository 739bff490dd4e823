"""Segment Nuclei dock widget: choose image, model and device, run in a thread worker, show results."""

from __future__ import annotations

import napari
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal

from .. import zoo
from ..device import describe, resolve_device
from ..errors import NucleisegError
from ..options import SegmentOptions
from ._common import (
    channel_box,
    channel_value,
    denoise_box,
    diameter_box,
    diameter_value,
    even_light_box,
    form,
    hint,
    keep_chosen,
    make_scrollable,
    model_choices,
    row,
    section,
    shown_slice,
    start_worker,
    status_label,
)
from .layer_output import keep_edited_labels, merge_plane, put_layers
from .live_table import follow_viewer
from .outofcore_work import segment_large_image, wants_out_of_core
from .segment_work import CURRENT_SLICE, EACH_SLICE, SegmentOutcome, image_input_from_layer, segment_image

DEVICES = [("Auto (GPU if there is one)", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda")]


class _ProgressRelay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued Qt signal)."""

    progressed = Signal(float, str)


def suggestion(kind: str, model: str | None) -> str:
    """A hint naming the opt-in models made for this kind of image (with their licence), if any."""
    from .. import zoo

    chosen = zoo.get_entry(model).name if model else ""
    better = [e for e in zoo.suggested_for(kind) if e.name != chosen]
    if not better:
        return ""
    names = ", ".join(f"{e.name} ({e.card.get('licence', 'licence not stated')})" for e in better)
    return f" For {kind} images, try the opt-in model {names}."


class SegmentWidget(Container):
    """Find every nucleus in an image layer and add ``<image> nuclei``, ``probability`` and ``uncertainty``.

    Parameters
    ----------
    napari_viewer : napari.Viewer
        The viewer whose Image layers can be segmented and where results are added.

    Notes
    -----
    The work runs in a napari thread worker; :meth:`run` starts it, :meth:`cancel`
    stops it (no partial layer is left), ``worker`` is the running worker or None.
    :meth:`refresh_models` re-reads the model zoo (call it after saving a new user model).
    """

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=False)
        self.viewer = napari_viewer
        self.worker = None
        self._cancel_requested = False
        self._relay = _ProgressRelay()
        self._relay.progressed.connect(self._on_progress)

        self._intro = hint("Finds every nucleus in the chosen image. Results are added as new layers "
                            "(nuclei, probability, uncertainty); the nuclei layer's features hold one row "
                            "of measurements per nucleus.")
        self._image = ComboBox(label="Image", choices=self._image_choices, nullable=False,
                               tooltip="The microscopy image to segment (fluorescence or bright-field, 2D "
                                       "or a stack). Labels layers cannot be chosen.")
        self._model = ComboBox(label="Model", choices=self._model_choices,
                               tooltip="Which trained network finds the nuclei. Your fine-tuned models appear "
                                       "here too (marked [user]).")
        self._model_info = hint("")
        self._device = ComboBox(label="Device", choices=DEVICES, value="auto",
                                tooltip="Where the network runs. Auto uses a GPU when one is available, "
                                        "otherwise the CPU.")
        self._device_info = hint("")
        self._threshold = FloatSpinBox(label="Probability threshold", min=0.05, max=0.95, step=0.05,
                                       value=0.5,
                                       tooltip="A pixel counts as nucleus when the model's probability is "
                                               "above this. Lower it if faint nuclei are missed; raise it if "
                                               "background is picked up. Set from the model when it changes; left at "
                                               "the model's value, the model's setting for each kind of image applies.")
        self._min_size = SpinBox(label="Min. nucleus size (pixels)", min=0, max=100000, value=8,
                                 tooltip="Objects smaller than this area (in pixels) are dropped as debris. Left at "
                                         "the model's value, the model's own setting for each kind of image applies.")
        self._diameter = diameter_box()
        self._tta = CheckBox(text="Test-time augmentation (8x slower)", value=False,
                             tooltip="Average the prediction over 8 flips/rotations: slightly more accurate "
                                     "outlines and a more reliable uncertainty map, 8 times the compute.")
        self._denoise = denoise_box()
        self._even_light = even_light_box()
        self._channel = channel_box()
        self._stacks = ComboBox(label="Stacks (z / time)", choices=[EACH_SLICE, CURRENT_SLICE],
                                value=EACH_SLICE,
                                tooltip="For 3D stacks or time series: segment every 2D slice, or only the "
                                        "slice shown now.")
        self._run_btn = PushButton(text="Segment nuclei", tooltip="Start segmentation (napari stays usable).")
        self._cancel_btn = PushButton(text="Cancel", enabled=False, tooltip="Stop the running segmentation.")
        self._progress = ProgressBar(label="Progress", min=0, max=100, value=0)
        self._status = status_label()
        self._advanced = section("Advanced settings", [self._device, self._device_info, self._threshold,
                                                        self._min_size, self._diameter, self._tta,
                                                        self._channel, self._denoise, self._even_light])
        self.extend([self._intro, form(self._image, self._model, self._model_info, self._stacks), self._advanced,
                     row(self._run_btn, self._cancel_btn), form(self._progress), self._status])
        self.native.layout().addStretch(1)  # keep the controls together at the top of the dock
        make_scrollable(self)

        self._model.changed.connect(self._on_model_changed)
        self._device.changed.connect(self._on_device_changed)
        self._run_btn.changed.connect(lambda: self.run())
        self._cancel_btn.changed.connect(self.cancel)
        events = self.viewer.layers.events
        follow_viewer(self.viewer)  # tables of results opened from files follow edits too
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self._reset_image_choices)
        self._on_model_changed()
        self._on_device_changed()

    # ----- choices -------------------------------------------------------------------------------
    def _image_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, napari.layers.Image)
                and not layer.name.endswith((" probability", " uncertainty"))]

    def _model_choices(self, _widget=None):
        return model_choices()

    def _reset_image_choices(self, event=None):
        self._image.reset_choices()

    def refresh_models(self, renamed: dict | None = None) -> None:
        """Re-read the model zoo (shipped and user models), keeping the current choice if it still
        exists, or under its new name (``renamed``: old -> new)."""
        before = self._model.value
        keep_chosen(self._model, renamed)
        if self._model.value in (before, (renamed or {}).get(before)):  # else ``changed`` updated everything
            self._show_model_info()

    def _show_model_info(self):
        """Show the chosen model's one-line description; return its zoo entry (None if there is none)."""
        name = self._model.value
        if name is None:
            self._model_info.value = "No model installed: add weights to the model zoo."
            return None
        try:
            entry = zoo.get_entry(name)
        except (KeyError, FileNotFoundError) as exc:
            self._model_info.value = str(exc)
            return None
        self._model_info.value = entry.description
        self._model.tooltip = entry.description
        return entry

    def _on_model_changed(self, _value=None):
        entry = self._show_model_info()
        if entry is not None:  # start from the post-processing tuned for this model
            post = entry.postprocess()
            self._threshold.value = float(post["threshold"])
            self._min_size.value = int(post["min_size"])

    def _on_device_changed(self, _value=None):
        try:
            self._device_info.value = f"Runs on: {describe(resolve_device(self._device.value))}"
        except ValueError as exc:
            self._device_info.value = f"Not available: {exc}"

    # ----- running -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a segmentation runs."""
        return self.worker is not None

    def _current_slice(self, layer) -> int:
        return shown_slice(self.viewer, layer)

    def run(self, layer=None):
        """Segment ``layer`` (default: the chosen image) in a thread worker.

        Bad input is reported with a napari notification and nothing is started; existing
        layers are left untouched. Returns the worker, or None when nothing was started.
        """
        if self.running:
            show_info("A segmentation is already running; cancel it first.")
            return None
        layer = self._image.value if layer is None else layer
        try:
            inp = image_input_from_layer(layer)
        except NucleisegError as exc:
            show_error(str(exc))
            self._status.value = str(exc)
            return None
        if self._model.value is None:
            show_error("No segmentation model is installed.")
            return None
        options = SegmentOptions(model=self._model.value, device=self._device.value, tta=self._tta.value,
                                 denoise=self._denoise.value, even_light=self._even_light.value,
                                 channel=channel_value(self._channel),
                                 threshold=self._threshold.value, min_size=self._min_size.value,
                                 diameter=diameter_value(self._diameter))
        if wants_out_of_core(inp):  # dask / multiscale layers, images above the size threshold
            work, kwargs, how = segment_large_image, dict(options=options), " block by block (out of core)"
        else:
            work, how = segment_image, ""
            kwargs = dict(options=options, stacks=self._stacks.value,
                          current_slice=self._current_slice(layer) if inp.is_stack else 0)
        self._cancel_requested = False
        self._set_busy(True)
        self._progress.value = 0
        self._status.value = f"Segmenting '{inp.name}'{how}: starting..."
        self.worker = start_worker(work, inp, progress=self._relay.progressed.emit,
                                   cancel=self._is_cancelled, what=f"Cannot segment '{inp.name}'",
                                   on_returned=self._on_returned, on_error=self._on_error,
                                   on_finished=self._on_finished, viewer=self.viewer, stop=self.cancel,
                                   task=f"segmenting '{inp.name}'", **kwargs)
        return self.worker

    def _on_error(self, message: str) -> None:
        self._status.value = message
        show_error(message)

    def cancel(self) -> None:
        """Ask the running segmentation to stop; it stops after the current tile, leaving no layer."""
        if self.running:
            self._cancel_requested = True
            self._status.value = "Cancelling..."
            self._cancel_btn.enabled = False

    def _is_cancelled(self) -> bool:
        return self._cancel_requested

    def _set_busy(self, busy: bool) -> None:
        self._run_btn.enabled = not busy
        self._cancel_btn.enabled = busy
        for w in (self._image, self._model, self._device, self._threshold, self._min_size, self._diameter,
                  self._tta, self._denoise, self._even_light, self._channel, self._stacks):
            w.enabled = not busy

    def _on_progress(self, fraction: float, message: str) -> None:
        if self.running and not self._cancel_requested:
            # the bar only moves forwards (segment_any's fraction never falls; this guards the display)
            self._progress.value = max(self._progress.value, int(round(100 * max(0.0, min(1.0, fraction)))))
            self._status.value = message[:1].upper() + message[1:]

    def _on_returned(self, outcome: SegmentOutcome) -> None:
        if outcome.cancelled:
            self._status.value = "Cancelled: no layers were changed."
            self._progress.value = 0
            show_info("Segmentation cancelled.")
        elif outcome.error:
            self._on_error(outcome.error)
        else:
            layers = outcome.layers
            if outcome.plane is not None:  # one plane of a stack: the others of the result shown stay
                layers = merge_plane(self.viewer, layers, outcome.plane)
            kept = keep_edited_labels(self.viewer, layers)  # after the merge, which reads the edited layer
            put_layers(self.viewer, layers)
            self._progress.value = 100
            self._status.value = (f"Found {outcome.n_nuclei} nuclei in {outcome.seconds:.1f} s "
                                  f"with {outcome.model} on {outcome.device}.")
            if outcome.zoom != 1:
                size = "larger" if outcome.zoom < 1 else "smaller"
                self._status.value += (f" The nuclei are {size} than the model's training size: segmented at "
                                       f"{outcome.zoom:.2f}x, results at full size.")
            if outcome.smoothing > 0:
                self._status.value += (" The image is noisier than the model's training images (or spans few "
                                       "grey levels): it was smoothed a little first "
                                       f"(sigma {outcome.smoothing:.2f} px).")
            if outcome.evened > 0:
                self._status.value += (" The light was uneven (a darker side or corners): it was evened out "
                                       "before segmenting.")
            if outcome.unsure:
                self._status.value += f" {outcome.unsure}"
            if kept:
                self._status.value += f" Your corrections were kept in {', '.join(repr(k) for k in kept)}."
            show_info(self._status.value)
            self._status.value += " Probability and uncertainty layers are hidden: click their eye to show them."
            self._status.value += suggestion(outcome.image_kind, self._model.value)

    def _on_finished(self) -> None:
        self.worker = None
        self._set_busy(False)
