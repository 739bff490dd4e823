"""Fine-tune Model dock widget: correct labels in napari, retrain a zoo model on them, segment again.

The training itself is :func:`napari_nucleiseg.training.finetune.fine_tune` (the same function as
``nucleiseg finetune``), run in a napari thread worker so that napari stays responsive.
"""

from __future__ import annotations

import threading

import napari
from magicgui.widgets import (
    ComboBox,
    Container,
    FloatSpinBox,
    LineEdit,
    ProgressBar,
    PushButton,
    Select,
    SpinBox,
)
from napari.utils.notifications import show_error, show_info

from ..device import describe, resolve_device
from ..errors import FinetuneCancelled, FinetuneError
from ..training.finetune import DEFAULT_BLEND, DEFAULT_LR, FinetuneProgress, default_name
from ._common import (
    ProgressRelay,
    _while_alive,
    form,
    hint,
    keep_chosen,
    make_scrollable,
    model_choices,
    row,
    section,
    short_names,
    shown_slice,
    start_worker,
    status_label,
)
from ._loss_plot import LossPlot, theme_colours
from ._model_manager import ModelManager
from .finetune_work import FinetuneOutcome, layer_plane, run_finetune, training_set

DEVICES = [("Auto (GPU if there is one)", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda"), ("Apple MPS", "mps")]
LEARNING_RATES = [("1e-4 (gentle)", 1e-4), ("3e-4 (default)", 3e-4), ("1e-3 (fast)", 1e-3)]
STEPS, MINUTES = "steps", "minutes"
_NONE = "(none)"


class FinetuneWidget(Container):
    """Fine-tune a zoo model on (image, corrected labels) pairs and save it as a new user model.

    Parameters
    ----------
    napari_viewer : napari.Viewer

    Notes
    -----
    Public API (used by tests and scripts): :meth:`add_pair`, :meth:`start` (returns the
    worker), :meth:`cancel`, :meth:`segment_again`, :meth:`refresh_models`; ``last_result``
    holds the last :class:`~napari_nucleiseg.training.finetune.FinetuneResult`, ``last_error`` the
    last error message, ``worker`` the running worker or None; ``manager`` is the
    user-model manager (rename, export, import, delete).
    """

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=False)
        self.viewer = napari_viewer
        self.worker = None
        self.last_result = None
        self.last_error = None
        self.pairs: list[tuple] = []
        self._trained_labels: list = []  # the Labels layers of the last run: never overwritten
        self._segmenting = False  # the worker is Segment again's, not a fine-tuning run
        self._cancel = threading.Event()
        self._abandoned = threading.Event()  # the window closed: stop and save nothing
        self._relay = ProgressRelay()
        self._relay.progressed.connect(_while_alive(self._on_progress))
        self._build()
        self._connect()
        self._on_base_changed()
        self._on_device_changed()
        self._on_budget_changed()

    # ----- layout --------------------------------------------------------------------------------
    def _build(self) -> None:
        self._intro = hint("Correct a nuclei layer with napari's paint/erase/fill tools (or draw labels on a "
                            "crop), then retrain a model on it. Optionally draw rectangles in a Shapes layer "
                            "around the corrected parts: only those are used.")
        self._image = ComboBox(label="Image", choices=self._layer_choices(napari.layers.Image))
        # not ``_labels``: that is magicgui's own flag for showing field labels
        self._labels_layer = ComboBox(label="Corrected labels", choices=self._layer_choices(napari.layers.Labels))
        self._add_pair_btn = PushButton(text="Add pair", tooltip="Train on several images: add each pair.")
        self._remove_pair_btn = PushButton(text="Remove selected")
        self._pair_list = Select(label="Pairs", choices=[], allow_multiple=True)
        self._pair_list.native.setMaximumHeight(70)
        self._pair_hint = hint("No pair added: the image and labels above are used.")
        self._shapes = ComboBox(label="Only inside", choices=self._shapes_choices,
                                tooltip="A Shapes layer whose rectangles mark the corrected areas.")
        self._val_image = ComboBox(label="Validation image", choices=self._layer_choices(napari.layers.Image, True),
                                   tooltip="Optional held-out corrected image: its score picks the weights kept "
                                           "and a worse model than the base is never kept.")
        self._val_labels = ComboBox(label="Validation labels",
                                    choices=self._layer_choices(napari.layers.Labels, True))
        self._keep = Select(label="Keep working on", choices=self._layer_choices(napari.layers.Image),
                            allow_multiple=True, value=[],
                            tooltip="Optional: other images (no labels needed, e.g. other conditions of the "
                                    "screen). The new model is trained to keep segmenting them as the base "
                                    "model does, so it does not forget them.")
        self._keep.native.setMaximumHeight(70)
        self._base = ComboBox(label="Base model", choices=self._model_choices)
        self._budget = ComboBox(label="Stop after", choices=[STEPS, MINUTES], value=STEPS)
        self._steps = SpinBox(label="Steps", min=1, max=100000, value=200)
        self._minutes = FloatSpinBox(label="Minutes", min=0.1, max=600.0, step=0.5, value=5.0)
        self._lr = ComboBox(label="Learning rate", choices=LEARNING_RATES, value=DEFAULT_LR)
        self._blend = FloatSpinBox(label="Keep of the change", min=0.05, max=1.0, step=0.05, value=DEFAULT_BLEND,
                                   tooltip="How much of what fine-tuning learnt the new model keeps "
                                           "(base + keep x change). 0.5 keeps most of the gain on your kind "
                                           "of image and little of the loss on other kinds; 1 keeps all of it "
                                           "(docs/finetuning_repeats.md).")
        self._device = ComboBox(label="Device", choices=DEVICES, value="auto")
        self._device_info = hint("")
        self._name = LineEdit(label="New model name")
        self._start_btn = PushButton(text="Fine-tune")
        self._cancel_btn = PushButton(text="Cancel", enabled=False,
                                      tooltip="Stop now; the best weights so far are kept and saved.")
        self._progress = ProgressBar(label="Progress", min=0, max=1000, value=0)
        self._status = status_label()
        self.plot = LossPlot(colours=theme_colours(self.viewer))
        self._again_btn = PushButton(text="Segment again with the new model", enabled=False)
        self.manager = ModelManager(on_change=self.refresh_models, notify=self._notify, in_use=self._models_in_use)
        plot_box = Container(labels=False)
        plot_box.margins = (0, 0, 0, 0)
        plot_box.native.layout().addWidget(self.plot)
        self._advanced = section("Validation, regions and training settings", [
            self._shapes, self._val_image, self._val_labels, self._keep, self._lr, self._blend, self._device,
            self._device_info])
        self._models_box = section("Your models (rename, export, import, delete)", [self.manager],
                                   labels=False)
        self.extend([self._intro, form(self._image, self._labels_layer), row(self._add_pair_btn,
                                                                             self._remove_pair_btn),
                     form(self._pair_list), self._pair_hint,
                     form(self._base, self._budget, self._steps, self._minutes, self._name), self._advanced,
                     row(self._start_btn, self._cancel_btn), form(self._progress), self._status, plot_box,
                     self._again_btn, self._models_box])
        self.native.layout().addStretch(1)
        make_scrollable(self)

    def _connect(self) -> None:
        self._add_pair_btn.changed.connect(lambda: self.add_pair())
        self._remove_pair_btn.changed.connect(self._remove_pairs)
        self._base.changed.connect(self._on_base_changed)
        self._device.changed.connect(self._on_device_changed)
        self._budget.changed.connect(self._on_budget_changed)
        self._start_btn.changed.connect(lambda: self.start())
        self._cancel_btn.changed.connect(self.cancel)
        self._again_btn.changed.connect(lambda: self.segment_again())
        events = self.viewer.layers.events
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self._on_layers_changed)

    # ----- choices -------------------------------------------------------------------------------
    def _layer_choices(self, kind, optional: bool = False):
        def choices(_widget=None):
            found = [layer for layer in self.viewer.layers if isinstance(layer, kind)
                     and not layer.name.endswith((" probability", " uncertainty"))]
            # hidden layers (a sample's ground truth) last; otherwise the layer list's order, so that the
            # first image and the first labels stay a pair (Segment Nuclei keeps corrections ahead of the new result)
            found.sort(key=lambda layer: not layer.visible)
            return ([(_NONE, None)] if optional else []) + short_names(found)
        return choices

    def _shapes_choices(self, _widget=None):
        return [("(whole image)", None)] + [(layer.name, layer) for layer in self.viewer.layers
                                            if isinstance(layer, napari.layers.Shapes)]

    def _model_choices(self, _widget=None):
        return model_choices()

    def _on_layers_changed(self, event=None):
        for w in (self._image, self._labels_layer, self._shapes, self._val_image, self._val_labels, self._keep):
            w.reset_choices()
        alive = [(i, lab) for i, lab in self.pairs if i in self.viewer.layers and lab in self.viewer.layers]
        if len(alive) != len(self.pairs):
            self.pairs = alive
            self._show_pairs()

    def refresh_models(self, renamed: dict | None = None) -> None:
        """Re-read the zoo here, in the model manager and in every docked widget of this plugin;
        a model chosen anywhere that was renamed (``renamed``: old -> new name) stays chosen."""
        keep_chosen(self._base, renamed)
        self.manager.refresh()
        for w in self._docked():
            if w is not self and callable(getattr(w, "refresh_models", None)):
                try:
                    w.refresh_models(renamed)
                except TypeError:  # another plugin's widget, of another signature
                    w.refresh_models()

    def _docked(self) -> list:
        try:
            return list(self.viewer.window.dock_widgets.values())
        except (AttributeError, RuntimeError):
            return []

    def _models_in_use(self) -> set:
        """The models that running jobs of this plugin's docked widgets (and this one) use."""
        used = set()
        if self.running:
            used |= {self._base.value, getattr(self.last_result, "name", None)}
        for w in self._docked():
            box = getattr(w, "_model", None)
            if w is not self and getattr(w, "running", False) and box is not None:
                used.add(box.value)
        return used - {None}

    def _on_base_changed(self, _value=None):
        if self._base.value is not None and not self.running:
            self._name.value = default_name(self._base.value)

    def _on_device_changed(self, _value=None):
        try:
            self._device_info.value = f"Training runs on: {describe(resolve_device(self._device.value))}"
        except ValueError as exc:
            self._device_info.value = str(exc)

    def _on_budget_changed(self, _value=None):
        self._steps.visible = self._budget.value == STEPS
        self._minutes.visible = self._budget.value == MINUTES

    # ----- pairs ---------------------------------------------------------------------------------
    def add_pair(self, image_layer=None, labels_layer=None) -> None:
        """Add an (Image layer, Labels layer) pair to train on (default: the ones chosen above)."""
        image_layer = image_layer if image_layer is not None else self._image.value
        labels_layer = labels_layer if labels_layer is not None else self._labels_layer.value
        if image_layer is None or labels_layer is None:
            return self._notify("choose an image and its corrected labels first", True)
        if (image_layer, labels_layer) not in self.pairs:
            self.pairs.append((image_layer, labels_layer))
            for layer in (image_layer, labels_layer):  # the list shows the layers' current names
                layer.events.name.connect(self._show_pairs)
        self._show_pairs()

    def _remove_pairs(self, *_):
        chosen = set(self._pair_list.value)  # positions in self.pairs
        self.pairs = [p for k, p in enumerate(self.pairs) if k not in chosen]
        self._show_pairs()

    @staticmethod
    def _pair_text(pair) -> str:
        return f"{pair[0].name}  <-  {pair[1].name}"

    def _show_pairs(self, *_) -> None:
        self._pair_list.choices = [(self._pair_text(p), k) for k, p in enumerate(self.pairs)]
        self._pair_hint.value = (f"{len(self.pairs)} pair(s) will be used." if self.pairs
                                 else "No pair added: the image and labels above are used.")

    def _current_slice(self, layer) -> int:
        return shown_slice(self.viewer, layer)

    # ----- running -------------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """True while a fine-tuning or segmentation worker runs."""
        return self.worker is not None

    def start(self):
        """Start fine-tuning in a thread worker; returns it, or None when the input is not usable.

        Problems found before training (shape mismatch, no nuclei, a taken name...) are shown
        at once and nothing is started.
        """
        if self.running:
            self._notify("fine-tuning is already running; cancel it first", True)
            return None
        pairs = self.pairs or [(self._image.value, self._labels_layer.value)]
        try:
            train = training_set(pairs, self._shapes.value, self._current_slice)
            val = None
            if self._val_image.value is not None or self._val_labels.value is not None:
                val = training_set([(self._val_image.value, self._val_labels.value)], None, self._current_slice)
            if self._base.value is None:
                raise FinetuneError("no base model is installed")
            resolve_device(self._device.value)
            trained_on = [p[0] for p in pairs]
            self._trained_labels = [p[1] for p in pairs]
            replay = [layer_plane(layer, self._current_slice, lazy=True) for layer in self._keep.value
                      if layer not in trained_on]
        except (FinetuneError, ValueError) as exc:
            self.last_error = str(exc)
            self._notify(str(exc), True)
            return None
        kwargs = dict(
            steps=self._steps.value if self._budget.value == STEPS else None,
            time_budget_s=self._minutes.value * 60 if self._budget.value == MINUTES else None,
            lr=self._lr.value, blend=self._blend.value, device=self._device.value,
            name=self._name.value.strip() or None,
            replay_images=replay,
        )
        self._cancel.clear()
        self._abandoned.clear()
        self.last_error = None
        self.plot.clear()
        self._progress.value = 0
        self._set_busy(True)
        self._status.value = f"Fine-tuning {self._base.value} on {len(train)} image(s): starting..."
        from .layer_output import untouched_result

        uncorrected = [layer.name for layer in self._trained_labels if untouched_result(layer)]
        if uncorrected:
            self._notify(f"{self._status.value} Note: {', '.join(repr(n) for n in uncorrected)} "
                         f"{'is' if len(uncorrected) == 1 else 'are'} the model's result, not corrected since: "
                         "training on it teaches the model what it already does. Paint the corrections first.")
        self.worker = start_worker(run_finetune, self._base.value, train, val,
                                   progress=self._relay.progressed.emit, cancel=self._should_stop,
                                   what="Fine-tuning not done", on_returned=self._on_returned,
                                   on_error=self._on_error, on_finished=self._on_finished, viewer=self.viewer,
                                   stop=self._abandon, task=f"fine-tuning {self._base.value}", **kwargs)
        return self.worker

    def _on_error(self, message: str) -> None:
        self.last_error = message
        self._notify(message, True)

    def cancel(self) -> None:
        """Stop the run after the current step; the best weights so far are saved as the new model
        (*Segment again* stops without adding layers)."""
        if self.running:
            self._cancel.set()
            self._cancel_btn.enabled = False
            self._status.value = ("Cancelling the segmentation..." if self._segmenting
                                  else "Cancelling: saving the best weights so far...")

    def _should_stop(self) -> bool:
        """The run's ``cancel``: True after Cancel (the best weights so far are saved); raises once the
        window closed, so that no model nobody saw is added to the zoo."""
        if self._abandoned.is_set():
            raise FinetuneCancelled("napari was closed during fine-tuning: no model was saved")
        return self._cancel.is_set()

    def _abandon(self) -> None:
        """Closing the window: stop the run without saving a model."""
        self._abandoned.set()
        self._cancel.set()

    def _set_busy(self, busy: bool) -> None:
        self._start_btn.enabled = not busy
        self._cancel_btn.enabled = busy
        self._again_btn.enabled = not busy and self.last_result is not None
        for w in (self._image, self._labels_layer, self._add_pair_btn, self._remove_pair_btn, self._shapes,
                  self._val_image, self._val_labels, self._base, self._budget, self._steps, self._minutes,
                  self._lr, self._blend, self._device, self._name, self.manager, self._keep):
            w.enabled = not busy

    def _on_progress(self, p: FinetuneProgress) -> None:
        if self._abandoned.is_set():
            return
        if p.loss is None:  # the base model's validation score, before training
            self.plot.add_validation(p.step, p.val_score)
            self._status.value = f"base model: validation DSB {p.val_score:.3f}; training..."
            return
        self._progress.value = int(round(1000 * p.fraction))
        self.plot.add(p.step, p.loss, p.smoothed_loss, p.val_score)
        left = ""
        if p.fraction > 0.02:
            left = f", about {max(0.0, p.elapsed_s * (1 / p.fraction - 1)):.0f} s left"
        val = f", validation DSB {self.plot.val_scores[-1]:.3f}" if self.plot.val_scores else ""
        if not self._cancel.is_set():
            self._status.value = f"step {p.step}: loss {p.smoothed_loss:.3f}{val}{left}"

    def _on_returned(self, outcome: FinetuneOutcome) -> None:
        if outcome.cancelled:  # the user's own Cancel, before any step: a message, not an error
            self._notify(outcome.error)
            return
        if not outcome.ok:
            self._on_error(outcome.error)
            return
        res = self.last_result = outcome.result
        self.plot.refresh(force=True)
        self._progress.value = 1000
        self._status.value = res.message
        show_info(res.message)
        self.refresh_models()
        if res.name in self.manager.model.choices:
            self.manager.model.value = res.name
        self._name.value = default_name(self._base.value) if self._base.value else ""

    def _on_finished(self) -> None:
        self.worker = None
        self._segmenting = False
        self._set_busy(False)

    def _notify(self, message: str, error: bool = False) -> None:
        self._status.value = message
        (show_error if error else show_info)(message)

    # ----- segment again -------------------------------------------------------------------------
    def segment_again(self, image_layer=None, model: str | None = None):
        """Segment ``image_layer`` (default: the first training image) with the new model, in a worker.

        The result goes to ``<image> nuclei``, unless that layer holds corrections used for
        training: then to ``<image> nuclei (<model>)``; a layer of that name painted in since is
        first renamed ``... (corrected)`` (``keep_edited_labels``), so no correction is ever overwritten.
        Returns the worker, or None.
        """
        from .layer_output import keep_edited_labels, put_layers
        from .segment_work import image_input_from_layer, segment_image

        if self.running:
            return None
        model = model or (self.last_result.name if self.last_result else None)
        if model is None:
            return self._notify("fine-tune a model first", True)
        if image_layer is None:
            image_layer = self.pairs[0][0] if self.pairs else self._image.value
        try:
            inp = image_input_from_layer(image_layer)
        except Exception as exc:  # InvalidImageError and friends: show, start nothing
            return self._notify(str(exc), True)
        protected = ({lab.name for _, lab in self.pairs} | {lab.name for lab in self._trained_labels}
                     | {getattr(self._labels_layer.value, "name", None)})

        def done(outcome):
            if outcome.cancelled:
                return self._notify("Segmentation cancelled: nothing was added.")
            if not outcome.ok:
                return self._notify(outcome.error or "segmentation cancelled", True)
            layers = []
            for data, kw, kind in outcome.layers:
                if kind == "labels" and kw["name"] in protected:
                    kw = {**kw, "name": f"{kw['name']} ({model})"}
                layers.append((data, kw, kind))
            kept = keep_edited_labels(self.viewer, layers)  # a layer corrected since is not a training pair
            put_layers(self.viewer, layers)
            self._notify(f"{outcome.n_nuclei} nuclei found with {model} in {outcome.seconds:.1f} s"
                         + (f"; your corrections were kept in {', '.join(repr(k) for k in kept)}" if kept else ""))

        self._cancel.clear()
        self._segmenting = True
        self._set_busy(True)
        self._status.value = f"Segmenting '{inp.name}' with {model}..."
        self.worker = start_worker(segment_image, inp, model=model, device=self._device.value,
                                   cancel=self._cancel.is_set, what=f"Cannot segment '{inp.name}'",
                                   on_returned=done, on_error=lambda msg: self._notify(msg, True),
                                   on_finished=self._on_finished, viewer=self.viewer, stop=self.cancel,
                                   task=f"segmenting '{inp.name}' with {model}")
        return self.worker
