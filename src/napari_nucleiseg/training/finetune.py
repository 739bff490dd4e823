"""Fine-tune a zoo model on a few corrected images and save it as a new user model.

The one function :func:`fine_tune` is called by the Fine-tune widget, by
``nucleiseg finetune`` and by the benchmark; it never imports Qt.

What it does, in order:

1. checks every (image, labels) pair (same shape, at least one nucleus, a free model name)
   before any training, so mistakes cost nothing;
2. prepares the images exactly as ``segment()`` does, cuts out the corrected rectangle
   when one is given, and relabels connected components (labels painted with one value
   still give separate nuclei);
3. trains a fresh copy of the base model with augmented random crops (so big images never
   need to fit in memory at once), a low learning rate with warm-up and cosine decay,
   frozen batch-norm statistics and a pull towards the base weights (against forgetting);
4. keeps the best weights reached: by the validation DSB score when validation pairs are
   given (the base model is scored first, so a worse model never wins), else by the
   lowest smoothed training loss; Cancel stops early and keeps them too;
5. saves a new user model whose card names the parent, the images, the settings and both curves.

Images of one kind (``preprocess.image_kind``) start from the model the base uses for that
kind (its specialist, if it has one), and the new model hands every other kind back to the
models that segmented it before (``start_and_routes``).
"""

from __future__ import annotations

import datetime as _dt
import functools
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from ..errors import (EmptyLabelsError, FinetuneCancelled, FinetuneError, ModelNameError,
                      ShapeMismatchError)
from ..inference.preprocess import KINDS, image_kind

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


def _label_name(names, i, kind="image"):
    if names is not None and i < len(names) and names[i]:
        return str(names[i])
    return f"{kind} {i + 1}"


def _clip_region(region, shape):
    """``(region, ok)``: integer ``(y0, x0, y1, x1)`` clipped to ``shape`` (None stays None);
    ``ok`` is False when less than 8x8 pixels remain."""
    if region is None:
        return None, True
    y0, x0, y1, x1 = (int(round(float(v))) for v in region)
    y0, y1 = sorted((y0, y1))
    x0, x1 = sorted((x0, x1))
    y0, x0 = max(y0, 0), max(x0, 0)
    y1, x1 = min(y1, shape[0]), min(x1, shape[1])
    if y1 - y0 < 8 or x1 - x0 < 8:
        return (y0, x0, y1, x1), False
    return (y0, x0, y1, x1), True


def prepare_pairs(pairs: Sequence, regions=None, names=None, invert=None, kind="image", target=None):
    """Check and prepare (image, labels) pairs for training.

    Parameters
    ----------
    pairs : sequence of (image, labels)
        ``image`` is ``(Y, X)`` grey or ``(Y, X, 3|4)`` RGB(A) in any dtype; ``labels`` is
        ``(Y, X)`` (0 = background). Labels painted with a single value are split into
        connected components.
    regions : sequence, optional
        Per pair ``(y0, x0, y1, x1)`` or None: only this rectangle of the pair is used.
    names : sequence of str, optional
        Names for messages and for the model card.
    invert : bool, optional
        Passed to ``preprocess.prepare`` (None: detect bright-field).
    target : float, optional
        The model's ``sizing.target_diameter``: pairs whose corrected nuclei are larger are
        shrunk to it, as ``segment()`` shrinks such images before predicting (``sizing``).

    Returns
    -------
    samples : list of dataset.Sample
    info : list of dict
        Per pair: name, shape, region and number of nuclei (for the model card).

    Raises
    ------
    ShapeMismatchError, EmptyLabelsError, FinetuneError
    """
    from skimage.measure import label as cc_label

    from .dataset import Sample
    from ..inference.preprocess import prepare
    from ..inference.sizing import median_diameter, shrink, shrink_labels, zoom_for

    if not pairs:
        raise FinetuneError(f"no {kind} pairs given: choose at least one image and its labels")
    if regions is not None and len(regions) != len(pairs):
        raise FinetuneError(f"{len(regions)} regions for {len(pairs)} {kind} pairs")
    samples, info = [], []
    for i, (image, labels) in enumerate(pairs):
        nm = _label_name(names, i, kind)
        image = np.asarray(image)
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ShapeMismatchError(f"{nm}: labels must be a 2D image, got shape {labels.shape}")
        if image.shape[:2] != labels.shape or image.ndim not in (2, 3):
            raise ShapeMismatchError(
                f"{nm}: image shape {image.shape} does not match labels shape {labels.shape}; "
                "the labels must be drawn on the same image (same height and width)"
            )
        if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != bool:
            if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
                raise FinetuneError(f"{nm}: labels must be whole numbers (0 = background)")
        image_type = image_kind(image, invert)
        x = prepare(image, invert=image_type != "fluorescence")
        region, ok = _clip_region(regions[i] if regions is not None else None, labels.shape)
        if not ok:
            raise FinetuneError(f"{nm}: the rectangle {region} is smaller than 8x8 pixels inside the image")
        if region is not None:
            y0, x0, y1, x1 = region
            x = x[y0:y1, x0:x1]
            labels = labels[y0:y1, x0:x1]
        lab = cc_label(labels.astype(np.int64), background=0, connectivity=1).astype(np.int32)
        n = int(lab.max())
        if n == 0:
            where = " inside the rectangle" if region is not None else ""
            raise EmptyLabelsError(f"{nm}: the labels contain no nuclei{where}; draw or correct some first")
        zoom = zoom_for(median_diameter(lab), target)
        if zoom < 1.0:
            x, lab = shrink(x, zoom), shrink_labels(lab, zoom)
        samples.append(Sample(np.ascontiguousarray(x, np.float32), lab, nm, image_type))
        info.append({"name": nm, "shape": list(image.shape), "region": list(region) if region else None,
                     "nuclei": n, "kind": image_type, "zoom": round(zoom, 4)})
    return samples, info


def start_and_routes(entry, kinds: set[str]):
    """Where fine-tuning starts, and which models keep the image kinds it was not shown.

    Images of one kind start from the model ``entry`` uses for that kind (its specialist, if
    any: ``ModelEntry.for_kind``). The new model then segments the kinds it was trained on; every
    other kind stays with the model that segmented it before (``specialists`` of the new card),
    so corrections on one kind of image cannot make the others worse.

    Returns
    -------
    (ModelEntry, dict)
        The start model and the new card's ``specialists`` (kind -> model name).
    """
    from .. import zoo

    start = entry.for_kind(next(iter(kinds))) if len(kinds) == 1 else entry
    return start, {k: entry.for_kind(k).name for k in KINDS if k not in kinds}


def unique_name(base: str) -> str:
    """A free, valid model name derived from ``base`` (``base``, ``base-2``, ...)."""
    from .. import zoo

    stem = "".join(c if (c.isalnum() or c in "_.-") else "-" for c in base).strip("-._")[:56] or "model"
    for k in range(1, 1000):
        cand = stem if k == 1 else f"{stem}-{k}"
        try:
            zoo.check_name(cand)
            return cand
        except ValueError:
            continue
    raise ModelNameError(f"no free model name found for {base!r}")


def default_name(base_model: str) -> str:
    """Suggested name for a model fine-tuned from ``base_model``."""
    return unique_name(f"{base_model}-finetuned")


def _check_name(name: str) -> None:
    from .. import zoo

    try:
        zoo.check_name(name)
    except ValueError as exc:
        raise ModelNameError(str(exc)) from None


@functools.lru_cache(maxsize=2)
def replay_samples(n: int = 8, size: int = 256, seed: int = 1234) -> tuple:
    """Built-in synthetic fluorescence fields with exact labels, mixed into fine-tuning batches.

    They remind the model of what nuclei look like in general while it adapts to a few
    images of one kind, so it does not forget other image types (no data is downloaded).

    Parameters
    ----------
    n : int
        Number of fields; sizes, densities, touching fraction and noise vary between them.
    size : int
        Edge of each field in pixels.
    seed : int

    Returns
    -------
    tuple of dataset.Sample
        Cached: the same fields each call (do not modify them).
    """
    from .dataset import Sample
    from ..inference.preprocess import prepare
    from ..synthetic import synthetic_nuclei

    rng = np.random.default_rng(seed)
    radii = [(5, 9), (7, 12), (10, 18), (6, 14)]
    out = []
    for i in range(n):
        r = radii[i % len(radii)]
        density = rng.uniform(0.05, 0.25)  # fraction of the field covered by nuclei
        count = max(4, int(density * size * size / (np.pi * np.mean(r) ** 2)))
        img, lab = synthetic_nuclei((size, size), n_nuclei=count, radius=r, touching=rng.uniform(0.1, 0.3),
                                    noise=rng.uniform(0.02, 0.08), seed=int(rng.integers(2**31)))
        out.append(Sample(prepare(img, invert=False), lab, f"synthetic {i + 1}"))
    return tuple(out)


def _teacher_labels(model, samples, device, post) -> list:
    """The same images labelled by ``model`` (instances after post-processing); empty results dropped."""
    from .dataset import Sample
    from ..evaluation.evaluate import predict_instances

    model.to(device).eval()
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    out = []
    for s in samples:
        _, lab = predict_instances(model, s.image, device, post)
        if lab.max() > 0:
            out.append(Sample(s.image, lab.astype(np.int32), s.name))
    return out


class _FrozenBatchNorm:
    """Keep every batch-norm layer in eval mode (running statistics frozen) during training."""

    def __init__(self, model: torch.nn.Module):
        self.handles = [
            m.register_forward_pre_hook(lambda mod, _inp: setattr(mod, "training", False))
            for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
        ]

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def blend_states(base: dict, tuned: dict, blend: float) -> dict:
    """``base + blend * (tuned - base)`` for every floating-point tensor of two state dicts
    (weight-space ensembling); other tensors (batch-norm counters) are taken from ``tuned``."""
    return {k: base[k] + blend * (v - base[k]) if v.is_floating_point() else v for k, v in tuned.items()}


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
    from .. import zoo
    from ..device import describe, resolve_device
    from ..evaluation.evaluate import evaluate_model
    from .trainer import Trainer

    say = log or (lambda _s: None)
    if replay_labels not in ("base model", "truth"):
        raise FinetuneError(f"replay_labels must be 'base model' or 'truth', got {replay_labels!r}")
    if not 0 < blend <= 1:
        raise FinetuneError(f"blend must be in (0, 1], got {blend}")
    if not 0 <= replay < 1:
        raise FinetuneError(f"replay must be in [0, 1), got {replay}")
    if steps is not None and steps < 1:
        raise FinetuneError(f"steps must be at least 1, got {steps}")
    if time_budget_s is not None and time_budget_s <= 0:
        raise FinetuneError(f"the time budget must be positive, got {time_budget_s}")
    if steps is None and time_budget_s is None:
        steps = DEFAULT_STEPS
    entry = zoo.get_entry(base_model)
    if name is None:
        name = default_name(entry.name)
    _check_name(name)
    target = entry.target_diameter()
    samples, info = prepare_pairs(pairs, regions, image_names, invert, target=target)
    val_samples, val_info = ([], [])
    if validation:
        val_samples, val_info = prepare_pairs(validation, validation_regions, validation_names, invert,
                                              kind="validation image", target=target)

    dev = resolve_device(device)
    start, routes = start_and_routes(entry, {s.kind for s in samples})
    model, blob = zoo.load_weights_file(start.weights)  # a fresh copy: the cached one stays intact
    arch, config = blob["architecture"], blob.get("config", {})
    post = entry.postprocess()
    largest = max(max(s.image.shape) for s in samples)
    crop = int(min(crop, max(64, 32 * math.ceil(largest / 32))))
    torch.manual_seed(seed)
    mixed = samples
    if replay > 0:
        from .dataset import Sample
        from ..inference.preprocess import prepare

        extra = list(replay_samples())
        if replay_labels == "base model":
            extra = _teacher_labels(model, extra, dev, post)
        if replay_images:
            own = [Sample(prepare(im, invert=invert), np.zeros(im.shape[:2], np.int32), f"replay image {i + 1}")
                   for i, im in enumerate(replay_images)]
            extra += _teacher_labels(model, own, dev, post)
        # the augmenter draws list entries uniformly: repeat the user's samples to get the mix asked for
        reps = max(1, round(len(extra) * (1 - replay) / (replay * len(samples))))
        mixed = samples * reps + extra
    trainer = Trainer(model, mixed, dev, total_steps=10**9, lr=lr, batch_size=batch_size,
                      crop=crop, seed=seed, warmup=1)
    anchor_weights = [p.detach().clone() for p in trainer.model.parameters()]
    frozen = _FrozenBatchNorm(trainer.model) if freeze_bn else None
    warmup = max(1, min(20, (steps or 200) // 10))
    if validate_every is None:
        validate_every = max(5, (steps or 200) // 10)

    losses, val_curve = [], []
    best_state, best_step, best_score, base_score = None, 0, None, None
    smoothed, best_smoothed = None, math.inf
    cancelled, t0 = False, time.perf_counter()
    last_val_t = t0

    def snapshot():
        return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}

    base_state = snapshot() if blend < 1 else None

    def validate(step):
        nonlocal best_state, best_step, best_score, last_val_t
        m = evaluate_model(trainer.model, val_samples, dev, post)
        score = float(m["dsb_score"])
        val_curve.append((step, score))
        last_val_t = time.perf_counter()
        if best_score is None or score > best_score:
            best_score, best_step, best_state = score, step, snapshot()
        say(f"step {step}: validation DSB score {score:.3f}" + (" (best)" if best_step == step else ""))
        return score

    via = f" (from {start.name}, its model for these images)" if start.name != entry.name else ""
    say(f"fine-tuning {entry.name}{via} on {len(samples)} image(s), {describe(dev)}, crop {crop}, "
        + (f"{steps} steps" if steps else "") + (" or " if steps and time_budget_s else "")
        + (f"{time_budget_s:.0f} s" if time_budget_s else ""))
    try:
        if val_samples:
            base_score = validate(0)
            if progress is not None:
                progress(FinetuneProgress(0, steps, 0.0, time.perf_counter() - t0, None, None, base_score, 0))
        while True:
            elapsed = time.perf_counter() - t0
            frac = max(trainer.steps_done / steps if steps else 0.0,
                       elapsed / time_budget_s if time_budget_s else 0.0)
            if frac >= 1.0:
                break
            if cancel is not None and cancel():
                cancelled = True
                break
            k = trainer.steps_done
            warm = min(1.0, max((k + 1) / warmup, frac / 0.05))  # steps or 5% of the time budget
            lr_now = lr * warm * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
            for g in trainer.opt.param_groups:
                g["lr"] = lr_now
            try:
                loss = trainer.step()
            except (RuntimeError, MemoryError) as exc:
                if not _is_oom(exc):
                    raise
                if dev.type == "cuda":
                    torch.cuda.empty_cache()
                if trainer.batch_size > 1:
                    trainer.batch_size //= 2
                elif trainer.aug.size > 64:
                    trainer.aug.size //= 2
                else:
                    raise FinetuneError("out of memory even with one 64-pixel crop per step; "
                                        "try the CPU or close other programs") from None
                say(f"out of memory: continuing with batch {trainer.batch_size}, crop {trainer.aug.size}")
                continue
            if anchor > 0:
                with torch.no_grad():
                    for p, p0 in zip(trainer.model.parameters(), anchor_weights):
                        p.sub_(p - p0, alpha=min(1.0, lr_now * anchor))
            losses.append(loss)
            step = trainer.steps_done
            smoothed = loss if smoothed is None else 0.9 * smoothed + 0.1 * loss
            score = None
            if val_samples:
                elapsed = time.perf_counter() - t0
                due = step % validate_every == 0
                if time_budget_s and time.perf_counter() - last_val_t >= time_budget_s / 10:
                    due = True
                if steps and step >= steps:
                    due = True
                if time_budget_s and elapsed >= time_budget_s * 0.97:
                    due = True
                if due:
                    score = validate(step)
            elif step >= warmup and smoothed < best_smoothed:
                best_smoothed, best_step, best_state = smoothed, step, snapshot()
            if progress is not None:
                elapsed = time.perf_counter() - t0
                frac = max(step / steps if steps else 0.0, elapsed / time_budget_s if time_budget_s else 0.0)
                progress(FinetuneProgress(step, steps, min(frac, 1.0), elapsed, loss, smoothed, score, best_step))
        if val_samples and losses and (not val_curve or val_curve[-1][0] != trainer.steps_done):
            validate(trainer.steps_done)
    finally:
        if frozen is not None:
            frozen.remove()

    if not losses:
        raise FinetuneCancelled("fine-tuning was cancelled before the first step; no model was saved")
    if best_state is None:  # no validation and still warming up: keep the latest weights
        best_step, best_state = trainer.steps_done, snapshot()
    if blend < 1 and best_step > 0:
        best_state = blend_states(base_state, best_state, blend)
    trainer.model.load_state_dict(best_state)
    trainer.model.eval().to("cpu").to(memory_format=torch.contiguous_format)
    seconds = time.perf_counter() - t0

    card = {
        "description": f"{entry.name} fine-tuned on {len(samples)} image(s)",
        "parent": entry.name,
        "parent_weights": start.weights.name,
        "postprocess": post,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "finetune": {
            "images": info,
            "validation_images": val_info,
            "settings": {"steps": steps, "time_budget_s": time_budget_s, "lr": lr,
                         "batch_size": batch_size, "crop": crop, "freeze_bn": freeze_bn,
                         "anchor": anchor, "replay": replay, "replay_labels": replay_labels,
                         "replay_images": len(replay_images or []),
                         "blend": blend, "invert": invert, "seed": seed,
                         "device": describe(dev)},
            "steps_done": trainer.steps_done,
            "seconds": round(seconds, 1),
            "cancelled": cancelled,
            "best_step": best_step,
            "selected_by": "validation DSB score" if val_samples else "smoothed training loss",
            "base_validation_dsb": base_score,
            "best_validation_dsb": best_score,
            "loss_curve": [round(v, 5) for v in losses],
            "validation_curve": [[s, round(v, 5)] for s, v in val_curve],
        },
    }
    if routes:
        card["specialists"] = routes
    for key in ("parameters", "input", "channels", "sizing"):
        if key in entry.card:
            card[key] = entry.card[key]
    final_name = name
    try:
        _check_name(final_name)
    except ModelNameError:  # taken while training: keep the work under a free name
        final_name = unique_name(name)
    saved = zoo.save_user_model(final_name, trainer.model, arch, config, card)

    parts = [f"saved {saved.name!r} after {trainer.steps_done} steps in {seconds:.0f} s"]
    if cancelled:
        parts.append("(cancelled: best weights so far kept)")
    if final_name != name:
        parts.append(f"(the name {name!r} was taken meanwhile)")
    if val_samples:
        if best_step == 0:
            parts.append(f"; validation DSB {base_score:.3f} did not improve, so the saved weights "
                         f"are the base model's")
        else:
            parts.append(f"; validation DSB {base_score:.3f} -> {best_score:.3f} (step {best_step})")
    message = " ".join(parts).replace(" ;", ";")
    say(message)
    return FinetuneResult(saved, losses, val_curve, best_step, best_score, base_score,
                          trainer.steps_done, seconds, cancelled, describe(dev), message)
