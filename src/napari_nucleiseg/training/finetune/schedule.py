"""How far a fine-tuning run is, in steps or against its time budget, and the learning rate that follows."""

from __future__ import annotations

import math
import time


class RunSchedule:
    """Progress of one run and its learning-rate factor: warm-up, then cosine decay to zero at the end.

    The run ends after ``steps`` steps or ``budget_s`` seconds, whichever comes first; its
    progress fraction is the further along of the two. The training loop calls :meth:`advance`
    before every step; :meth:`lr_factor` (the ``Trainer``'s ``schedule``) then follows that fraction,
    so with a time budget the rate decays with the time used, not with a step count fixed in advance.

    Parameters
    ----------
    steps : int, optional
        Planned steps (None: only the time budget ends the run).
    budget_s : float, optional
        Time budget in seconds, counted from :meth:`start`.
    """

    def __init__(self, steps: int | None, budget_s: float | None):
        self.steps = steps
        self.budget_s = budget_s
        # warm-up over a tenth of the run (of 200 steps with a time budget), 1 to 20 steps
        self.warmup = max(1, min(20, (steps or 200) // 10))
        self.t0 = None
        self.fraction_now = 0.0

    def start(self) -> None:
        """Start the clock of the time budget."""
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        """Seconds since :meth:`start`."""
        return time.perf_counter() - self.t0

    def fraction(self, step: int, elapsed: float | None = None) -> float:
        """Progress after ``step`` steps and ``elapsed`` seconds (now if None); 1 or more means done."""
        if elapsed is None:
            elapsed = self.elapsed()
        return max(step / self.steps if self.steps else 0.0,
                   elapsed / self.budget_s if self.budget_s else 0.0)

    def advance(self, step: int) -> float:
        """Progress now, before step ``step + 1``; :meth:`lr_factor` follows it until the next call."""
        self.fraction_now = self.fraction(step)
        return self.fraction_now

    def lr_factor(self, step: int) -> float:
        """Factor of the peak learning rate for the step after ``step`` steps.

        Linear warm-up over :attr:`warmup` steps or the first 5% of the run, whichever ends
        first, then cosine decay over the progress fraction of the last :meth:`advance`.
        """
        frac = self.fraction_now
        warm = min(1.0, max((step + 1) / self.warmup, frac / 0.05))
        return warm * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
