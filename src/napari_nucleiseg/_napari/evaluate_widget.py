"""Evaluate widget: score a predicted Labels layer against a ground-truth Labels layer, show the errors."""

from __future__ import annotations

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, PushButton
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import Qt

from ..errors import Cancelled, NucleisegError
from ..evaluation.metrics import CORRECT, FALSE_POSITIVE, MISSED, evaluate_labels
from ._common import form, hint, make_scrollable, row, start_worker, status_label
from .evaluate_work import check_pair, default_pair, partner

ERROR_NAMES = {FALSE_POSITIVE: "false positive", MISSED: "missed nucleus", CORRECT: "correct"}
ERROR_COLOURS = {None: "transparent", 0: "transparent", FALSE_POSITIVE: "#ff3030", MISSED: "#ffd000",
                 CORRECT: "#30d060"}
LEGEND = ("Errors layer: <span style='color:#30d060'>■ green</span> found (correct), "
          "<span style='color:#ff3030'>■ red</span> false positive (predicted, not in the ground truth), "
          "<span style='color:#ffd000'>■ yellow</span> missed (in the ground truth, not found).")


def format_metrics(m: dict) -> str:
    """Metrics as a few lines for people (scores 0 to 1, higher is better)."""
    return (f"DSB score: {m['dsb_score']:.3f}\n"
            f"AP@0.5: {m['ap50']:.3f}    F1: {m['f1']:.3f}    PQ: {m['pq']:.3f}\n"
            f"True positives: {m['tp']}    False positives: {m['fp']}    Missed (FN): {m['fn']}\n"
            f"Nuclei: {m['n_true']} true, {m['n_pred']} predicted")


def _full(layer):
    """A layer's data at full resolution (``np.asarray`` of a multiscale layer's data would give its
    smallest level): a copy of in-memory labels (the user may paint while the worker scores them),
    lazy data as it is (the worker loads it)."""
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    return data.copy() if isinstance(data, np.ndarray) else data


def _score(gt, pred, cancel):
    """Worker body (loads lazy data off the GUI thread): the metrics and error map, or None when cancelled."""
    try:
        return evaluate_labels(np.asarray(gt), np.asarray(pred), cancel=cancel)
    except Cancelled:
        return None


class EvaluateWidget(Container):
    """Compare a predicted Labels layer with a ground-truth Labels layer.

    Shows the DSB 2018 score, AP@0.5, F1 and TP/FP/FN counts, and adds a
    ``<prediction> errors`` layer: red = false positive, yellow = missed, green = correct.
    The default choice pairs a prediction with the ground truth of the same image.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=False)
        self.viewer = napari_viewer
        self.metrics: dict | None = None
        self.worker = None
        self._cancel_requested = False
        self._auto = True  # the pair shown was picked by the widget, not by the user: a newer one replaces it
        self._picking = False
        intro = hint("Scores a segmentation against hand-made ground truth. A nucleus counts as "
                     "found when its outlines overlap by more than half (IoU > 0.5).")
        self._pred = ComboBox(label="Prediction", choices=self._labels_choices,
                              tooltip="The segmentation to score, e.g. '<image> nuclei'.")
        self._gt = ComboBox(label="Ground truth", choices=self._labels_choices,
                            tooltip="Correct labels drawn or checked by hand, e.g. '<image> ground truth'. "
                                    "Chosen to match the prediction's image when there is one.")
        self._button = PushButton(text="Evaluate")
        self._cancel_btn = PushButton(text="Cancel", enabled=False, tooltip="Stop scoring (after the current slice).")
        self._result = status_label()
        self._result.tooltip = ("DSB score: mean over IoU thresholds 0.5-0.95 of TP/(TP+FP+FN) (Kaggle Data "
                                "Science Bowl 2018). AP@0.5: the same at IoU 0.5. F1: 2TP/(2TP+FP+FN). "
                                "PQ: panoptic quality.")
        self._legend = hint(LEGEND)
        self._legend.native.setTextFormat(Qt.TextFormat.RichText)
        self.extend([intro, form(self._pred, self._gt), row(self._button, self._cancel_btn), self._result,
                     self._legend])
        self.native.layout().addStretch(1)
        make_scrollable(self)
        self._button.changed.connect(lambda: self.start())
        self._cancel_btn.changed.connect(self.cancel)
        self._pred.changed.connect(self._on_pred_changed)
        self._pred.changed.connect(self._chosen_by_user)
        self._gt.changed.connect(self._chosen_by_user)
        events = self.viewer.layers.events
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self._reset)
        self._pick_defaults()

    def _labels_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, napari.layers.Labels) and not layer.name.endswith(" errors")]

    def _reset(self, event=None):
        self._picking = True
        try:
            self.reset_choices()
        finally:
            self._picking = False
        self._pick_defaults()

    def _chosen_by_user(self, _value=None):
        if not self._picking:
            self._auto = False

    def _pick_defaults(self):
        """Keep a valid pair the user chose; otherwise pick the newest prediction that has the ground
        truth of its image (a pair the widget picked gives way to a newer one)."""
        pred, gt = self._pred.value, self._gt.value
        if (not self._auto and pred is not None and gt is not None and pred is not gt
                and np.shape(pred.data) == np.shape(gt.data)):
            return
        new_pred, new_gt = default_pair([layer for _, layer in self._labels_choices()])
        self._picking = True
        try:
            if new_pred is not None:
                self._pred.value = new_pred
            if new_gt is not None:
                self._gt.value = new_gt
        finally:
            self._picking = False

    def _on_pred_changed(self, pred=None):
        """A new prediction takes the ground truth of its own image, when there is one."""
        if pred is None:
            return
        truths = [layer for _, layer in self._labels_choices() if "ground truth" in layer.name]
        match = partner(pred, truths)
        if match is not None:
            self._gt.value = match

    def _chosen(self, prediction, ground_truth):
        pred = self._pred.value if prediction is None else prediction
        gt = self._gt.value if ground_truth is None else ground_truth
        problem = None
        if pred is None or gt is None:
            problem = "Choose a prediction and a ground-truth Labels layer."
        elif pred is gt:
            problem = "Prediction and ground truth are the same layer: choose two different layers."
        else:
            try:
                check_pair(pred, gt)
            except NucleisegError as exc:
                problem = f"Cannot evaluate: {exc}"
        if problem:
            self._result.value = problem
            show_error(problem)
            return None
        return pred, gt

    def evaluate(self, prediction=None, ground_truth=None) -> dict | None:
        """Score ``prediction`` against ``ground_truth`` (default: the chosen layers), add the errors layer.

        Runs in the calling thread (the button uses ``start``). Returns the metrics dict, or
        None after showing an error notification.
        """
        chosen = self._chosen(prediction, ground_truth)
        if chosen is None:
            return None
        pred, gt = chosen
        try:
            result = evaluate_labels(np.asarray(_full(gt)), np.asarray(_full(pred)))
        except ValueError as exc:
            self._on_error(f"Cannot evaluate: {exc}")
            return None
        return self._show(result, pred, gt)

    def start(self, prediction=None, ground_truth=None):
        """Score in a background thread (large stacks take a while); Cancel stops it.

        Returns the worker, or None when the layers cannot be compared (one notification says why).
        """
        if self.worker is not None:
            return None
        chosen = self._chosen(prediction, ground_truth)
        if chosen is None:
            return None
        pred, gt = chosen
        self._cancel_requested = False
        self._set_busy(True)
        self._result.value = "Evaluating..."
        self.worker = start_worker(_score, _full(gt), _full(pred),
                                   lambda: self._cancel_requested, what="Cannot evaluate",
                                   on_returned=lambda result: self._done(result, pred, gt), on_error=self._on_error,
                                   on_finished=self._idle, viewer=self.viewer, stop=self.cancel,
                                   task=f"evaluating '{pred.name}'")
        return self.worker

    def cancel(self) -> None:
        """Stop a running evaluation; no layer is added."""
        if self.worker is not None:
            self._cancel_requested = True
            self._cancel_btn.enabled = False
            self._result.value = "Cancelling..."

    def _set_busy(self, busy: bool) -> None:
        self._button.enabled = not busy
        self._button.text = "Evaluating..." if busy else "Evaluate"
        self._cancel_btn.enabled = busy

    def _idle(self):
        self.worker = None
        self._set_busy(False)

    def _on_error(self, message: str) -> None:
        self._result.value = message
        show_error(message)

    def _done(self, result, pred, gt) -> None:
        if result is None or self._cancel_requested:
            self._result.value = "Cancelled: nothing was added."
            return
        if pred not in self.viewer.layers:
            self._result.value = f"'{pred.name}' was removed while it was scored: nothing was added."
            return
        self._show(result, pred, gt)

    def _show(self, result, pred, gt) -> dict:
        from .layer_output import put_layers

        metrics, errors = result
        self.metrics = metrics
        self._result.value = f"'{pred.name}' against '{gt.name}':\n{format_metrics(metrics)}"
        features = pd.DataFrame({"index": list(ERROR_NAMES), "status": list(ERROR_NAMES.values())})
        put_layers(self.viewer, [(errors, {
            "name": f"{pred.name} errors", "colormap": DirectLabelColormap(color_dict=ERROR_COLOURS),
            "features": features, "opacity": 0.7, "scale": tuple(pred.scale),
            "translate": tuple(pred.translate)}, "labels")])
        show_info(f"DSB score {metrics['dsb_score']:.3f}, AP@0.5 {metrics['ap50']:.3f}, "
                  f"{metrics['fp']} false positives, {metrics['fn']} missed")
        return metrics
