"""Evaluate widget: score a predicted Labels layer against a ground-truth Labels layer, show the errors."""

from __future__ import annotations

import napari
import numpy as np
import pandas as pd
from magicgui.widgets import ComboBox, Container, Label, PushButton
from napari.qt.threading import create_worker
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error, show_info

from ..evaluation.metrics import CORRECT, FALSE_POSITIVE, MISSED, evaluate_labels
from ._common import hint

ERROR_NAMES = {FALSE_POSITIVE: "false positive", MISSED: "missed nucleus", CORRECT: "correct"}
ERROR_COLOURS = {None: "transparent", 0: "transparent", FALSE_POSITIVE: "#ff3030", MISSED: "#ffd000",
                 CORRECT: "#30d060"}


def format_metrics(m: dict) -> str:
    """Metrics as a few lines for people (scores 0 to 1, higher is better)."""
    return (f"DSB score: {m['dsb_score']:.3f}\n"
            f"AP@0.5: {m['ap50']:.3f}    F1: {m['f1']:.3f}    PQ: {m['pq']:.3f}\n"
            f"True positives: {m['tp']}    False positives: {m['fp']}    Missed (FN): {m['fn']}\n"
            f"Nuclei: {m['n_true']} true, {m['n_pred']} predicted")


class EvaluateWidget(Container):
    """Compare a predicted Labels layer with a ground-truth Labels layer.

    Shows the DSB 2018 score, AP@0.5, F1 and TP/FP/FN counts, and adds a
    ``<prediction> errors`` layer: red = false positive, yellow = missed, green = correct.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.metrics: dict | None = None
        self.worker = None
        intro = hint("Scores a segmentation against hand-made ground truth. A nucleus counts as "
                     "found when its outlines overlap by more than half (IoU > 0.5).")
        self._pred = ComboBox(label="Prediction", choices=self._labels_choices,
                              tooltip="The segmentation to score, e.g. '<image> nuclei'.")
        self._gt = ComboBox(label="Ground truth", choices=self._labels_choices,
                            tooltip="Correct labels drawn or checked by hand, e.g. '<image> ground truth'.")
        self._button = PushButton(text="Evaluate")
        self._result = Label(value="")
        self._result.native.setWordWrap(True)
        self._result.tooltip = ("DSB score: mean over IoU thresholds 0.5-0.95 of TP/(TP+FP+FN) (Kaggle Data "
                                "Science Bowl 2018). AP@0.5: the same at IoU 0.5. F1: 2TP/(2TP+FP+FN). "
                                "PQ: panoptic quality.")
        self.extend([intro, self._pred, self._gt, self._button, self._result])
        self._button.changed.connect(lambda: self.start())
        events = self.viewer.layers.events
        for ev in (events.inserted, events.removed, events.reordered):
            ev.connect(self._reset)
        self._pick_defaults()

    def _labels_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self.viewer.layers
                if isinstance(layer, napari.layers.Labels) and not layer.name.endswith(" errors")]

    def _reset(self, event=None):
        self.reset_choices()
        self._pick_defaults()

    def _pick_defaults(self):
        layers = [layer for _, layer in self._labels_choices()]
        preds = [la for la in layers if la.name.endswith(" nuclei")]
        truths = [la for la in layers if "ground truth" in la.name]
        if truths and (self._gt.value is None or "ground truth" not in self._gt.value.name):
            self._gt.value = truths[-1]
        if preds and (self._pred.value is None or self._pred.value is self._gt.value):
            self._pred.value = preds[-1]

    def _chosen(self, prediction, ground_truth):
        pred = self._pred.value if prediction is None else prediction
        gt = self._gt.value if ground_truth is None else ground_truth
        if pred is None or gt is None:
            show_error("Choose a prediction and a ground-truth Labels layer.")
            return None
        if pred is gt:
            show_error("Prediction and ground truth are the same layer: choose two different layers.")
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
            result = evaluate_labels(np.asarray(gt.data), np.asarray(pred.data))
        except ValueError as exc:
            show_error(f"Cannot evaluate: {exc}")
            return None
        return self._show(result, pred)

    def start(self, prediction=None, ground_truth=None):
        """Score in a background thread (large stacks take a while); the button shows it is busy.

        Returns the worker, or None when the layers cannot be compared (a notification says why).
        """
        chosen = self._chosen(prediction, ground_truth)
        if chosen is None:
            return None
        pred, gt = chosen
        self._button.enabled = False
        self._button.text = "Evaluating..."
        self._result.value = ""
        self.worker = create_worker(evaluate_labels, np.asarray(gt.data), np.asarray(pred.data))
        self.worker.returned.connect(lambda result: self._show(result, pred))
        self.worker.errored.connect(lambda exc: show_error(f"Cannot evaluate: {exc}"))
        self.worker.finished.connect(self._idle)
        self.worker.start()
        return self.worker

    def _idle(self):
        self._button.enabled = True
        self._button.text = "Evaluate"

    def _show(self, result, pred) -> dict:
        from .layer_output import put_layers

        metrics, errors = result
        self.metrics = metrics
        self._result.value = format_metrics(metrics)
        features = pd.DataFrame({"index": list(ERROR_NAMES), "status": list(ERROR_NAMES.values())})
        put_layers(self.viewer, [(errors, {
            "name": f"{pred.name} errors", "colormap": DirectLabelColormap(color_dict=ERROR_COLOURS),
            "features": features, "opacity": 0.7, "scale": tuple(pred.scale),
            "translate": tuple(pred.translate)}, "labels")])
        show_info(f"DSB score {metrics['dsb_score']:.3f}, AP@0.5 {metrics['ap50']:.3f}, "
                  f"{metrics['fp']} false positives, {metrics['fn']} missed")
        return metrics
