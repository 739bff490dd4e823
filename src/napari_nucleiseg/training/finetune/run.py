""":func:`fine_tune`: check everything, prepare the pairs, train, keep the best weights, save a user model."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ...errors import FinetuneCancelled, FinetuneError, ModelNameError
from .card import RunSettings, model_card, summary
from .loop import train
from .naming import check_name, default_name, unique_name
from .pairs import prepare_pairs, start_and_routes
from .replay import mix_replay
from .result import DEFAULT_BLEND, DEFAULT_LR, DEFAULT_STEPS, FinetuneProgress, FinetuneResult
from .safeguards import FrozenBatchNorm, blend_states
from .schedule import RunSchedule
from .selection import BestWeights, snapshot


def fine_tune(
    base_model: str = "default",
    pairs: Sequence = (),
    regions: Sequence | None = None,
    steps: int | None = None,
    time_budget_s: float | None = None,
    lr: float = DEFAULT_LR,
    batch_size: int = 4,
    crop: int = 256,
    device: str | torch.device | None = None,
    progress: Callable[[FinetuneProgress], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    validation: Sequence | None = None,
    validation_regions: Sequence | None = None,
    validate_every: int | None = None,
    name: str | None = None,
    image_names: Sequence[str] | None = None,
    validation_names: Sequence[str] | None = None,
    freeze_bn: bool = True,
    anchor: float = 1.0,
    replay: float = 0.5,
    replay_labels: str = "base model",
    replay_images: Sequence[np.ndarray] | None = None,
    blend: float = DEFAULT_BLEND,
    invert: bool | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
):
    """Fine-tune a zoo model on corrected images and save the result as a new user model.

    Parameters
    ----------
    base_model : str
        Zoo model to start from (shipped or user; ``"default"``). It is never modified.
    pairs : sequence of (image, labels)
        Raw images (as the user sees them: grey or RGB, any dtype) with instance labels.
    regions : sequence, optional
        Per pair ``(y0, x0, y1, x1)`` or None: use only this rectangle (partly corrected images).
    steps : int, optional
        Number of optimisation steps. With neither ``steps`` nor ``time_budget_s``: 200.
    time_budget_s : float, optional
        Stop after this many seconds (validation included); with ``steps`` too, whichever comes first.
    lr : float
        Peak learning rate (lower than from scratch; warm-up then cosine decay to zero).
    batch_size, crop : int
        Random augmented crops per step and their edge (smaller for small images).
    device : str, optional
        ``"auto"``/None (GPU when present), ``"cpu"``, ``"cuda"``, ``"mps"``.
    progress : callable, optional
        Called with a :class:`FinetuneProgress` after every step.
    cancel : callable, optional
        Polled before every step; True stops training, keeps the best weights and saves them.
    validation : sequence of (image, labels), optional
        Held-out corrected images; the DSB score on them chooses the weights kept.
    validation_regions : sequence, optional
        Rectangles for the validation pairs, as ``regions``.
    validate_every : int, optional
        Steps between validations (default: a tenth of the run).
    name : str, optional
        Name of the new user model (default: ``<base>-finetuned[-N]``); must be unused.
    image_names, validation_names : sequence of str, optional
        Shown in messages and recorded in the model card.
    freeze_bn : bool
        Keep batch-norm statistics of the base model (recommended for a few images).
    anchor : float
        Strength of the decoupled pull of every weight towards the base weights
        (per step, ``lr * anchor`` of the difference); 0 disables it.
    replay : float
        Fraction of each batch drawn from built-in synthetic fluorescence fields
        (:func:`replay_samples`) so that the model keeps working on other image types; 0 disables it.
    replay_labels : {"base model", "truth"}
        Targets for the replay fields: the base model's own segmentation of them (it keeps
        behaving as before on such images: distillation) or their exact synthetic labels.
    replay_images : sequence of numpy.ndarray, optional
        The user's other images (no labels needed), e.g. other image types of the same
        screen: they join the replay fields, labelled by the base model, so the fine-tuned
        model keeps segmenting them as the base model did.
    blend : float
        Fraction of the learnt change that is kept: the saved weights are
        ``base + blend * (best - base)`` (weight-space ensembling). The default, 0.5, kept
        nearly all of the gain on the fine-tuned image type and most of the base model's skill
        on the others; 1.0 keeps the fine-tuned weights as they are.
    invert : bool, optional
        Dark nuclei on a bright background; None detects it per image (as ``segment`` does).
    seed : int
    log : callable, optional
        Receives a few lines of text (start, validation scores, end).

    Returns
    -------
    FinetuneResult

    Raises
    ------
    ShapeMismatchError, EmptyLabelsError, ModelNameError
        Before any training, so nothing is lost.
    FinetuneCancelled
        Cancelled before the first step (nothing to save).
    FinetuneError
        Out of memory even with the smallest batch and crop.
    """
    from ... import zoo
    from ...device import describe, resolve_device
    from ...zoo.foreign import ADAPTER_KEY

    say = log or (lambda _s: None)
    steps = _checked_length(steps, time_budget_s, blend, replay, replay_labels, lr)
    entry = zoo.get_entry(base_model)
    if ADAPTER_KEY in entry.card:
        raise FinetuneError(f"model {entry.name!r} is a TorchScript graph imported from a bioimage.io package: "
                            "only our architectures can be fine-tuned")
    if entry.outputs_instances:
        raise FinetuneError(f"model {entry.name!r} is a detector (it outputs instances): fine-tuning "
                            "takes map models only; choose another base model")
    if name is None:
        name = default_name(entry.name)
    check_name(name)
    samples, info, val_samples, val_info = _prepare_data(entry, pairs, regions, image_names, validation,
                                                         validation_regions, validation_names, invert)
    dev = resolve_device(device)
    kinds = {s.kind for s in samples}
    start, routes = start_and_routes(entry, kinds)
    model, blob = zoo.load_weights_file(start.weights)  # a fresh copy: the cached one stays intact
    post = entry.postprocess(next(iter(kinds)) if len(kinds) == 1 else None)  # as the images were segmented
    crop = _fitting_crop(samples, crop)
    torch.manual_seed(seed)
    mixed = samples
    if replay > 0:
        mixed = mix_replay(samples, model, dev, post, replay, replay_labels, replay_images, invert,
                           channels=entry.input_channels(), stain_signal=entry.for_kind("stained").stain_signal())
    settings = RunSettings(steps, time_budget_s, lr, batch_size, crop, freeze_bn, anchor, replay, replay_labels,
                           len(replay_images or []), blend, invert, seed)
    intro = _intro(entry, start, len(samples), describe(dev), crop, steps, time_budget_s)
    trainer, best, losses, cancelled, seconds = _train_and_keep(
        model, mixed, dev, post, val_samples, settings, validate_every, progress, cancel, say, intro)
    result = FinetuneResult(None, losses, best.curve, best.step, best.score, best.base_score,
                            trainer.steps_done, seconds, cancelled, describe(dev))
    card = model_card(entry, start, entry.postprocess(), info, val_info, settings.for_card(describe(dev)), routes,
                      result)
    result.entry = zoo.save_user_model(_free_name(name), trainer.model, blob["architecture"],
                                       blob.get("config", {}), card)
    result.message = summary(result, name, bool(val_samples))
    say(result.message)
    return result


def _positive(v) -> bool:
    """A finite number above 0."""
    try:
        return math.isfinite(float(v)) and float(v) > 0
    except (TypeError, ValueError):
        return False


def _checked_length(steps, time_budget_s, blend, replay, replay_labels, lr) -> int | None:
    """Refuse settings that cannot work before anything is loaded; returns ``steps`` (the default
    when neither ``steps`` nor ``time_budget_s`` is given)."""
    if not _positive(lr):
        raise FinetuneError(f"the learning rate must be a positive number, got {lr}")
    if replay_labels not in ("base model", "truth"):
        raise FinetuneError(f"replay_labels must be 'base model' or 'truth', got {replay_labels!r}")
    if not 0 < blend <= 1:
        raise FinetuneError(f"blend must be in (0, 1], got {blend}")
    if not 0 <= replay < 1:
        raise FinetuneError(f"replay must be in [0, 1), got {replay}")
    if steps is not None and steps < 1:
        raise FinetuneError(f"steps must be at least 1, got {steps}")
    if time_budget_s is not None and not _positive(time_budget_s):  # NaN was taken: a run without end
        raise FinetuneError(f"the time budget must be positive, got {time_budget_s}")
    if steps is None and time_budget_s is None:
        return DEFAULT_STEPS
    return steps


def _prepare_data(entry, pairs, regions, names, validation, validation_regions, validation_names, invert):
    """``(samples, info, val_samples, val_info)`` from ``prepare_pairs``, at ``entry``'s nucleus size."""
    inputs = {"target": entry.target_diameter(), "channels": entry.input_channels(),
              "stain_signal": entry.for_kind("stained").stain_signal()}
    samples, info = prepare_pairs(pairs, regions, names, invert, **inputs)
    val_samples, val_info = [], []
    if validation:
        val_samples, val_info = prepare_pairs(validation, validation_regions, validation_names, invert,
                                              kind="validation image", **inputs)
    return samples, info, val_samples, val_info


def _fitting_crop(samples, crop: int) -> int:
    """``crop``, but no larger than the largest image rounded up to 32 pixels (and at least 64)."""
    largest = max(max(s.image.shape) for s in samples)
    return int(min(crop, max(64, 32 * math.ceil(largest / 32))))


def _intro(entry, start, n_images: int, device: str, crop: int, steps, time_budget_s) -> str:
    via = f" (from {start.name}, its model for these images)" if start.name != entry.name else ""
    return (f"fine-tuning {entry.name}{via} on {n_images} image(s), {device}, crop {crop}, "
            + (f"{steps} steps" if steps else "") + (" or " if steps and time_budget_s else "")
            + (f"{time_budget_s:.0f} s" if time_budget_s else ""))


def _train_and_keep(model, samples, device, post, val_samples, settings: RunSettings, validate_every,
                    progress, cancel, say, intro: str):
    """Train ``model`` and load into it the weights kept (blended back towards the start), on the CPU.

    The clock of the time budget starts once the trainer is built; ``intro`` is said then.

    Returns
    -------
    trainer : trainer.Trainer
    best : BestWeights
    losses : list of float
    cancelled : bool
    seconds : float

    Raises
    ------
    FinetuneCancelled
        Cancelled before the first step.
    """
    from ..trainer import Trainer

    schedule = RunSchedule(settings.steps, settings.time_budget_s)
    trainer = Trainer(model, samples, device, lr=settings.lr, batch_size=settings.batch_size,
                      crop=settings.crop, seed=settings.seed, schedule=schedule.lr_factor)
    anchor_weights = [p.detach().clone() for p in trainer.model.parameters()]
    frozen = FrozenBatchNorm(trainer.model) if settings.freeze_bn else None
    if validate_every is None:
        validate_every = max(5, (settings.steps or 200) // 10)
    schedule.start()
    best = BestWeights(trainer.model, val_samples, device, post, schedule.t0, say)
    base_state = snapshot(trainer.model) if settings.blend < 1 else None
    say(intro)
    try:
        losses, cancelled = train(trainer, schedule, best, anchor_weights, settings.anchor, validate_every,
                                  progress, cancel, say)
        if best.validating and losses and (not best.curve or best.curve[-1][0] != trainer.steps_done):
            best.validate(trainer.steps_done)
    finally:
        if frozen is not None:
            frozen.remove()
    if not losses and not cancelled:
        raise FinetuneError(f"the time budget ran out before the first step ({schedule.elapsed():.0f} s went to "
                            "preparing and validating the base model); give it more time; no model was saved")
    if not losses:
        raise FinetuneCancelled("fine-tuning was cancelled before the first step; no model was saved")
    if best.state is None:  # no validation and still warming up: keep the latest weights
        best.step, best.state = trainer.steps_done, snapshot(trainer.model)
    state = best.state
    if settings.blend < 1 and best.step > 0:
        state = blend_states(base_state, best.state, settings.blend)
    trainer.model.load_state_dict(state)
    trainer.model.eval().to("cpu").to(memory_format=torch.contiguous_format)
    return trainer, best, losses, cancelled, time.perf_counter() - schedule.t0


def _free_name(name: str) -> str:
    """``name`` if it is still free, else a free name derived from it (taken while training: keep the work)."""
    try:
        check_name(name)
        return name
    except ModelNameError:
        return unique_name(name)
