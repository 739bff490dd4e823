"""A small live plot of the training loss and validation score (matplotlib inside Qt)."""

from __future__ import annotations

import time

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure


class LossPlot(FigureCanvasQTAgg):
    """Loss per step (raw and smoothed) on the left axis, validation DSB score on the right.

    Redraws at most every ``min_interval`` seconds so that fast runs stay cheap.
    """

    def __init__(self, min_interval: float = 0.25):
        fig = Figure(figsize=(3.2, 2.2), tight_layout=True)
        super().__init__(fig)
        self.setMinimumHeight(180)
        self.ax = fig.add_subplot(111)
        self.ax_val = self.ax.twinx()
        self.min_interval = min_interval
        self._last_draw = 0.0
        self.clear()

    def clear(self) -> None:
        """Forget all points (a new run starts)."""
        self.steps, self.losses, self.smoothed = [], [], []
        self.val_steps, self.val_scores = [], []
        self.ax.clear()
        self.ax_val.clear()
        self.ax.set_xlabel("step", fontsize=8)
        self.ax.set_ylabel("loss", fontsize=8)
        self.ax_val.yaxis.tick_right()
        self.ax_val.yaxis.set_label_position("right")
        self.ax_val.set_ylabel("validation DSB", fontsize=8, color="tab:green")
        self.ax.tick_params(labelsize=7)
        self.ax_val.tick_params(labelsize=7, colors="tab:green")
        (self._raw,) = self.ax.plot([], [], color="0.75", lw=0.8, label="loss")
        (self._smooth,) = self.ax.plot([], [], color="tab:blue", lw=1.5, label="smoothed")
        (self._val,) = self.ax_val.plot([], [], "o-", color="tab:green", ms=3, lw=1, label="validation")
        self.ax_val.set_ylim(0, 1)
        self.draw_idle()

    def add(self, step: int, loss: float, smoothed: float, val_score: float | None = None,
            force: bool = False) -> None:
        """Append one step (and a validation point when given) and redraw if due."""
        self.steps.append(step)
        self.losses.append(loss)
        self.smoothed.append(smoothed)
        if val_score is not None:
            self.add_validation(step, val_score, force=False)
        self.refresh(force)

    def add_validation(self, step: int, score: float, force: bool = True) -> None:
        """Append a validation score."""
        self.val_steps.append(step)
        self.val_scores.append(score)
        if force:
            self.refresh(True)

    def refresh(self, force: bool = False) -> None:
        """Redraw now if forced or if the last redraw is old enough."""
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        self._raw.set_data(self.steps, self.losses)
        self._smooth.set_data(self.steps, self.smoothed)
        self._val.set_data(self.val_steps, self.val_scores)
        self.ax.relim()
        self.ax.autoscale_view()
        if self.val_scores:
            lo, hi = min(self.val_scores), max(self.val_scores)
            pad = max(0.02, 0.1 * (hi - lo))
            self.ax_val.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
            self.ax_val.set_xlim(self.ax.get_xlim())
        self.draw_idle()
