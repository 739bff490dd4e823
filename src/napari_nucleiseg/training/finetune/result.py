"""What fine-tuning reports: its defaults, the progress after every step and the final result."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_LR = 3e-4
# half of the learnt change: on three picks of corrected images it kept nearly all of the gain on
# their image type and most of what the base model did on the others (docs/finetuning_repeats.md)
DEFAULT_BLEND = 0.5
DEFAULT_STEPS = 200


@dataclass
class FinetuneProgress:
    """What ``progress`` receives after every training step.

    Attributes
    ----------
    step : int
        Steps done so far.
    total_steps : int or None
        Planned steps (None when only a time budget is set).
    fraction : float
        Progress in [0, 1] (steps or time, whichever is further along).
    elapsed_s : float
    loss, smoothed_loss : float or None
        Training loss of this step and its exponential moving average (None for the
        report of the base model's validation score, at step 0, before training).
    val_score : float or None
        Validation DSB score computed at this step (None when none was computed).
    best_step : int
        Step whose weights are currently kept (0: the base model).
    """

    step: int
    total_steps: int | None
    fraction: float
    elapsed_s: float
    loss: float | None
    smoothed_loss: float | None
    val_score: float | None = None
    best_step: int = 0


@dataclass
class FinetuneResult:
    """Outcome of :func:`fine_tune`.

    Attributes
    ----------
    entry : zoo.ModelEntry
        The saved user model.
    losses : list of float
        Training loss per step.
    validation : list of (int, float)
        ``(step, DSB score)`` pairs; step 0 is the base model.
    best_step : int
        Step of the saved weights (0 means the base model was not improved on).
    best_score : float or None
        Validation score of the saved weights.
    base_score : float or None
        Validation score of the base model.
    steps_done : int
    seconds : float
    cancelled : bool
    device : str
    message : str
        One line for the user.
    """

    entry: object
    losses: list = field(default_factory=list)
    validation: list = field(default_factory=list)
    best_step: int = 0
    best_score: float | None = None
    base_score: float | None = None
    steps_done: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    device: str = ""
    message: str = ""

    @property
    def name(self) -> str:
        """Name of the saved model."""
        return self.entry.name
