"""A compact live plot of the training loss and validation score (matplotlib inside Qt), themed like napari."""

from __future__ import annotations

import time

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

#: Colours of napari's default dark theme, used when no viewer theme can be read.
DARK = {"background": "#23242b", "foreground": "#2e333e", "text": "#f0f1f2", "secondary": "#565f6c"}
LOSS, SMOOTH, VALIDATION = "#8a94a6", "#5fa8ff", "#5fd07a"
FONT = 9


def theme_colours(viewer=None) -> dict:
    """``background``, ``foreground``, ``text``, ``secondary`` of the viewer's napari theme (hex)."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme if viewer is not None else "dark")
        return {k: getattr(theme, k).as_hex() for k in DARK}
    except (AttributeError, KeyError, ValueError):
        return dict(DARK)


class LossPlot(FigureCanvasQTAgg):
    """Loss per step (raw and smoothed) on the left axis; validation DSB score on the right, only
    once there is one. Before the first step it shows one line saying what will appear.

    Redraws at most every ``min_interval`` seconds so that fast runs stay cheap.
    """

    def __init__(self, min_interval: float = 0.25, colours: dict | None = None):
        self.colours = colours or dict(DARK)
        fig = Figure(figsize=(3.0, 1.8), facecolor=self.colours["background"])
        fig.subplots_adjust(left=0.17, right=0.80, bottom=0.22, top=0.95)
        super().__init__(fig)
        from qtpy.QtWidgets import QSizePolicy

        self.setMinimumSize(200, 150)
        self.setMaximumHeight(220)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.ax = fig.add_subplot(111)
        self.ax_val = self.ax.twinx()
        self.min_interval = min_interval
        self._last_draw = 0.0
        self.clear()

    def _style(self, ax, label: str, side: str, colour: str) -> None:
        ax.set_facecolor(self.colours["foreground"])
        for spine in ax.spines.values():
            spine.set_color(self.colours["secondary"])
        ax.tick_params(labelsize=FONT - 1, colors=self.colours["text"])
        ax.yaxis.label.set_color(colour)
        ax.set_ylabel(label, fontsize=FONT)
        if side == "right":
            ax.yaxis.tick_right()
            ax.yaxis.set_label_position("right")
            ax.tick_params(axis="y", colors=colour)

    def clear(self) -> None:
        """Forget all points (a new run starts)."""
        self.steps, self.losses, self.smoothed = [], [], []
        self.val_steps, self.val_scores = [], []
        self.ax.clear()
        self.ax_val.clear()
        self._style(self.ax, "loss", "left", self.colours["text"])
        self._style(self.ax_val, "validation DSB", "right", VALIDATION)
        self.ax.set_xlabel("step", fontsize=FONT, color=self.colours["text"])
        (self._raw,) = self.ax.plot([], [], color=LOSS, lw=0.8, label="loss")
        (self._smooth,) = self.ax.plot([], [], color=SMOOTH, lw=1.6, label="smoothed")
        (self._val,) = self.ax_val.plot([], [], "o-", color=VALIDATION, ms=3, lw=1, label="validation")
        self._empty = self.ax.text(0.5, 0.5, "the loss curve appears here\nwhen fine-tuning starts",
                                   transform=self.ax.transAxes, ha="center", va="center", fontsize=FONT,
                                   color=self.colours["text"], alpha=0.7)
        self._show_axes()
        self.draw_idle()

    def _show_axes(self) -> None:
        """Ticks only with data; the validation axis only with a validation score."""
        has_loss, has_val = bool(self.steps), bool(self.val_scores)
        self._empty.set_visible(not has_loss and not has_val)
        self.ax.tick_params(labelbottom=has_loss or has_val, labelleft=has_loss,
                            bottom=has_loss or has_val, left=has_loss)
        self.ax.yaxis.label.set_visible(has_loss)
        self.ax.xaxis.label.set_visible(has_loss or has_val)
        self.ax_val.set_visible(has_val)

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
        self._show_axes()
        if self.steps:
            self.ax.relim()
            self.ax.autoscale_view()
        if self.val_scores:
            lo, hi = min(self.val_scores), max(self.val_scores)
            pad = max(0.02, 0.1 * (hi - lo))
            self.ax_val.set_ylim(max(0.0, lo - pad), min(1.0, hi + pad))
            steps = self.steps + self.val_steps
            self.ax.set_xlim(min(steps), max(max(steps), min(steps) + 1))
            self.ax_val.set_xlim(self.ax.get_xlim())
        self.draw_idle()
