"""Which weights a fine-tuning run keeps: the best validation score, else the lowest smoothed loss."""

from __future__ import annotations

import math
import time

import torch


def snapshot(model: torch.nn.Module) -> dict:
    """A detached copy of ``model``'s state dict."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class BestWeights:
    """The best weights a run has reached so far, and its validation curve.

    With validation samples, their DSB score decides: call :meth:`validate` for the base model
    first, so a model that scores worse or equal never replaces it (ties keep the earlier
    weights). Without, :meth:`offer_loss` keeps the weights of the lowest smoothed training loss.

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (read, never changed).
    val_samples : list of dataset.Sample
    device : torch.device
    post : dict
        Post-processing settings for the validation instances.
    t0 : float
        ``time.perf_counter()`` at the start of the run (the "last validation" before any).
    say : callable
        Receives one line per validation.
    """

    def __init__(self, model, val_samples, device, post, t0: float, say):
        self.model, self.val_samples, self.device, self.post, self.say = model, val_samples, device, post, say
        self.state, self.step, self.score = None, 0, None
        self.curve = []
        self.best_smoothed = math.inf
        self.last_val_t = t0

    @property
    def validating(self) -> bool:
        """Whether validation scores choose the weights."""
        return bool(self.val_samples)

    @property
    def base_score(self) -> float | None:
        """Validation score of the weights training started from (None without validation)."""
        return self.curve[0][1] if self.curve and self.curve[0][0] == 0 else None

    def validate(self, step: int) -> float:
        """Score the model now (after ``step`` steps), keep its weights if best; returns the DSB score."""
        from ...evaluation.evaluate import evaluate_model

        m = evaluate_model(self.model, self.val_samples, self.device, self.post)
        score = float(m["dsb_score"])
        self.curve.append((step, score))
        self.last_val_t = time.perf_counter()
        if self.score is None or score > self.score:
            self.score, self.step, self.state = score, step, snapshot(self.model)
        self.say(f"step {step}: validation DSB score {score:.3f}" + (" (best)" if self.step == step else ""))
        return score

    def offer_loss(self, step: int, smoothed: float) -> None:
        """Keep the weights after ``step`` steps if ``smoothed`` is the lowest smoothed loss so far."""
        if smoothed < self.best_smoothed:
            self.best_smoothed, self.step, self.state = smoothed, step, snapshot(self.model)
