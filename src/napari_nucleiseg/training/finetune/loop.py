"""The fine-tuning loop: steps until the run's length or Cancel, with validation and the anchor pull."""

from __future__ import annotations

import time

import torch

from ...errors import FinetuneError
from .result import FinetuneProgress
from .safeguards import pull_towards
from .schedule import RunSchedule
from .selection import BestWeights

#: How allocators say they ran out: CUDA and MPS, then PyTorch's CPU allocator (Linux, Windows).
OOM_TEXTS = ("out of memory", "can't allocate memory", "not enough memory")


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or any(t in str(exc).lower() for t in OOM_TEXTS)


def _step_or_shrink(trainer, say) -> float | None:
    """One training step; on running out of memory, halve the batch (else the crop) and return None.

    Raises
    ------
    FinetuneError
        Out of memory with one 64-pixel crop per step.
    """
    try:
        return trainer.step()
    except (RuntimeError, MemoryError) as exc:
        if not _is_oom(exc):
            raise
    if trainer.device.type == "cuda":
        torch.cuda.empty_cache()
    if trainer.batch_size > 1:
        trainer.batch_size //= 2
    elif trainer.aug.size > 64:
        trainer.aug.size //= 2
    else:
        raise FinetuneError("out of memory even with one 64-pixel crop per step; "
                            "try the CPU or close other programs") from None
    say(f"out of memory: continuing with batch {trainer.batch_size}, crop {trainer.aug.size}")
    return None


def _validation_due(step: int, schedule: RunSchedule, best: BestWeights, every: int) -> bool:
    """Every ``every`` steps, every tenth of the time budget, and at the end of the run."""
    elapsed = schedule.elapsed()
    budget = schedule.budget_s
    return bool(step % every == 0
                or (budget and time.perf_counter() - best.last_val_t >= budget / 10)
                or (schedule.steps and step >= schedule.steps)
                or (budget and elapsed >= budget * 0.97))


def train(trainer, schedule: RunSchedule, best: BestWeights, anchor_weights: list, anchor: float,
          validate_every: int, progress=None, cancel=None, say=lambda _s: None) -> tuple[list, bool]:
    """Train until ``schedule`` says the run is done or ``cancel()`` returns True.

    Parameters
    ----------
    trainer : trainer.Trainer
        Built with ``schedule.lr_factor`` as its schedule.
    schedule : RunSchedule
        Started already.
    best : BestWeights
        Offered the weights after every step (validated when due).
    anchor_weights : list of torch.Tensor
        The parameters training started from.
    anchor : float
        Per step, the weights move ``lr * anchor`` of the way back to ``anchor_weights`` (0: never).
    validate_every : int
        Steps between validations.
    progress, cancel, say : callable, optional
        As for :func:`fine_tune`.

    Returns
    -------
    losses : list of float
        Training loss per step.
    cancelled : bool
    """
    lr = trainer.sched.base_lrs[0]
    losses, smoothed = [], None
    if best.validating:
        base_score = best.validate(0)
        if progress is not None:
            progress(FinetuneProgress(0, schedule.steps, 0.0, schedule.elapsed(), None, None, base_score, 0))
    while schedule.advance(trainer.steps_done) < 1.0:
        if cancel is not None and cancel():
            return losses, True
        lr_now = lr * schedule.lr_factor(trainer.steps_done)  # what the trainer applies to this step
        loss = _step_or_shrink(trainer, say)
        if loss is None:
            continue
        if anchor > 0:
            pull_towards(trainer.model, anchor_weights, min(1.0, lr_now * anchor))
        losses.append(loss)
        step = trainer.steps_done
        smoothed = loss if smoothed is None else 0.9 * smoothed + 0.1 * loss
        score = None
        if best.validating:
            if _validation_due(step, schedule, best, validate_every):
                score = best.validate(step)
        elif step >= schedule.warmup:
            best.offer_loss(step, smoothed)
        if progress is not None:
            elapsed = schedule.elapsed()
            frac = schedule.fraction(step, elapsed)
            progress(FinetuneProgress(step, schedule.steps, min(frac, 1.0), elapsed, loss, smoothed, score,
                                      best.step))
    return losses, False
