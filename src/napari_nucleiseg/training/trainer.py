"""Training and fine-tuning: the loop, checkpoints that resume, per-epoch log of loss and DSB score."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from ..device import autocast_dtype, resolve_device
from ..errors import Cancelled, first_line
from ..evaluation.evaluate import evaluate_model
from ..inference.detect import is_instance_model
from ..io.writers import atomic_write_text
from ..models import checked_build
from ..models.detection.boxes import targets_from_labels as detection_targets
from ..zoo.weights_file import load_weights_file, save_weights
from .augment import Augmenter
from .dataset import sampling_weights
from .losses import bce, get_loss


def warmup_cosine(total_steps: int, warmup: int = 50) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up, then cosine decay to 0 at ``total_steps``.

    The warm-up lasts ``warmup`` steps, but at most a tenth of the run.
    """
    warm = max(1, min(warmup, total_steps // 10))
    return lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(s, total_steps) / total_steps))


class Trainer:
    """Optimiser, schedule and augmentation around one model; ``step()`` does one batch.

    Parameters
    ----------
    model : torch.nn.Module
    samples : list of dataset.Sample
    total_steps : int, optional
        Length of the default schedule (:func:`warmup_cosine`); needed unless ``schedule`` is given.
    regions : list, optional
        Per sample ``(y0, x0, y1, x1)`` where crops are centred (partly corrected images).
    contact_weight : float
        Extra BCE weight on pixels where two nuclei touch (``augment.contact_from_labels``),
        as in U-Net's weight map: 0 = plain loss.
    schedule : callable, optional
        ``steps_done -> factor``: the learning rate of the step about to be taken is ``lr * factor``.
        It is asked at the start of every step, so it may also follow something the caller
        updates between steps (fine-tuning follows its time budget). Default: ``warmup_cosine(
        total_steps, warmup)``.
    """

    def __init__(self, model, samples, device, total_steps: int | None = None, lr: float = 1e-3,
                 batch_size: int = 8, crop: int = 256, loss: str = "bce_dice",
                 augment: dict | None = None, seed: int = 0, regions=None, warmup: int = 50,
                 weights=None, contact_weight: float = 0.0, schedule: Callable[[int], float] | None = None):
        self.model = model.to(device)
        self.contact_weight = contact_weight
        self.device = device
        self.samples = samples
        self.regions = regions
        self.weights = weights
        self.batch_size = batch_size
        self.loss_fn = get_loss(loss)
        self.aug = Augmenter(size=crop, seed=seed, **(augment or {}))
        self.opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
        if schedule is None:
            if total_steps is None:
                raise ValueError("Trainer needs total_steps or a schedule")
            schedule = warmup_cosine(total_steps, warmup)
        self.schedule = schedule
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, schedule)
        self.distance = getattr(getattr(model, "head", None), "out_channels", 2) >= 3
        self.amp = autocast_dtype(device)
        self.channels_last = device.type == "cpu"
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.steps_done = 0

    def step(self) -> float:
        """One optimisation step on a fresh augmented batch; returns the loss."""
        self._apply_schedule()
        self.model.train()
        weight = None
        if self.contact_weight > 0:
            x, y, contact = self.aug.batch(self.samples, self.batch_size, self.regions, self.weights,
                                           contact=True, distance=self.distance)
            weight = (1 + self.contact_weight * contact).to(self.device)
        else:
            x, y = self.aug.batch(self.samples, self.batch_size, self.regions, self.weights,
                                  distance=self.distance)
        x, y = x.to(self.device), y.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(self.device.type, dtype=self.amp) if self.amp else nullcontext()
        with ctx:
            logits = self.model(x)
        logits = logits.float()
        loss = self.loss_fn(logits[:, :2], y[:, :2], weight)
        if self.distance:
            loss = loss + bce(logits[:, 2:3], y[:, 2:3]).sum()
        self._update(loss)
        return float(loss.detach())

    def _update(self, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss`` (gradients clipped at norm 5) and one schedule step."""
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        self.sched.step()
        self.steps_done += 1

    def _apply_schedule(self) -> None:
        # the same value LambdaLR set after the previous step, unless the schedule follows more than the step
        factor = self.schedule(self.steps_done)
        for group, base in zip(self.opt.param_groups, self.sched.base_lrs):
            group["lr"] = base * factor

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "steps_done": self.steps_done,
            "rng": self.aug.rng.bit_generator.state,
            "gen": self.aug.gen.get_state(),
        }

    def load_state(self, st: dict) -> None:
        self.model.load_state_dict(st["model"])
        self.opt.load_state_dict(st["opt"])
        self.sched.load_state_dict(st["sched"])
        self.steps_done = st["steps_done"]
        self.aug.rng.bit_generator.state = st["rng"]
        self.aug.gen.set_state(st["gen"])


class DetectorTrainer(Trainer):
    """``Trainer`` for an instance model (``models.detection``): the same optimiser, schedule,
    augmented crops and checkpoints; the loss is the sum of the model's own losses (RPN, box,
    mask) on the crops' instance labels. ``last_losses`` holds them for the latest step."""

    last_losses: dict = {}

    def step(self) -> float:
        self._apply_schedule()
        self.model.train()
        x, labs = self.aug.crops(self.samples, self.batch_size, self.regions, self.weights)
        targets = [{k: v.to(self.device) for k, v in detection_targets(lab[0].numpy().round()).items()}
                   for lab in labs]
        x = x.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.amp) if self.amp else nullcontext():
            losses = self.model(x, targets)
        loss = sum(v.float() for v in losses.values())
        self._update(loss)
        self.last_losses = {k: float(v.detach()) for k, v in losses.items()}
        return float(loss.detach())

    def state(self) -> dict:
        return {**super().state(), "sampler": self.model.generator.get_state()}

    def load_state(self, st: dict) -> None:
        super().load_state(st)
        if "sampler" in st:
            self.model.generator.set_state(st["sampler"])


def fit(arch: str, config: dict, train_samples, val_samples, out_dir, epochs: int = 50,
        steps_per_epoch: int | None = None, batch_size: int = 8, lr: float = 1e-3,
        loss: str = "bce_dice", crop: int = 256, val_every: int = 2, device=None,
        seed: int = 0, resume: bool = True, log: Callable[[str], None] = print,
        cancel: Callable[[], bool] | None = None, init=None,
        shares: dict[str, float] | None = None, contact_weight: float = 0.0,
        snapshots: bool = False, augment: dict | None = None) -> dict:
    """Train a zoo architecture from scratch; checkpoints every epoch and resumes from them.

    ``init`` (a weights file of ``save_weights``) starts from trained weights instead of
    random ones, for a second, shorter schedule (a warm restart). ``shares`` gives image kinds
    a fixed share of the training crops (``dataset.sampling_weights``); ``contact_weight``
    see ``Trainer``; ``snapshots`` also keeps the fp16 weights of every validated epoch
    (``out_dir/epoch_NNN.pt``, for checkpoint averaging); ``augment`` passes options to
    ``augment.Augmenter`` (e.g. ``{"dim_nuclei": 0.5}``). An instance architecture
    (``models.detection``) trains with ``DetectorTrainer``. Writes ``out_dir/last.pt`` (full state,
    to resume), ``out_dir/best.pt`` (fp16 weights of the best validation DSB score) and
    ``out_dir/history.json`` (loss and score per epoch).

    Returns
    -------
    dict
        ``history`` (list of per-epoch dicts), ``best`` (best validation metrics), ``seconds``.
    """
    torch.manual_seed(seed)
    device = resolve_device(device)
    if not train_samples:
        raise ValueError("no training images: nothing to train on")
    model = checked_build(arch, **config)  # its check draws no random numbers: runs stay reproducible
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps_per_epoch = steps_per_epoch or max(1, len(train_samples) // batch_size)
    if init is not None:
        model.load_state_dict(load_weights_file(init)[0].state_dict())
    kind = DetectorTrainer if is_instance_model(model) else Trainer
    trainer = kind(model, train_samples, device, epochs * steps_per_epoch, lr=lr,
                      batch_size=batch_size, crop=crop, loss=loss, seed=seed,
                      weights=sampling_weights(train_samples, shares), contact_weight=contact_weight,
                      augment=augment)
    history, best, start_epoch, seconds = [], None, 0, 0.0
    last = out / "last.pt"
    if resume and last.exists():
        # on the CPU: random-generator states must stay there; the model and optimiser move on loading
        st = torch.load(last, map_location="cpu", weights_only=True)
        if st.get("model", {"arch": arch, "config": config}) != {"arch": arch, "config": config}:
            raise ValueError(f"{out} holds a run of {st['model']['arch']} {json.dumps(st['model']['config'])}, "
                             f"not {arch} {json.dumps(config)}: choose another run folder, or start over (--no-resume)")
        try:
            trainer.load_state(st["trainer"])
        except (RuntimeError, KeyError) as exc:
            why = first_line(exc)
            raise ValueError(f"{last}: cannot resume this run with the architecture asked for ({why}); "
                             "choose another run folder, or start over (--no-resume)") from None
        history, best, start_epoch, seconds = st["history"], st["best"], st["epoch"], st["seconds"]
        log(f"resumed from {last} at epoch {start_epoch}")
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        losses = []
        for _ in range(steps_per_epoch):
            if cancel is not None and cancel():
                raise Cancelled()
            losses.append(trainer.step())
        row = {"epoch": epoch + 1, "loss": float(np.mean(losses)), "lr": trainer.sched.get_last_lr()[0]}
        if val_samples and ((epoch + 1) % val_every == 0 or epoch + 1 == epochs):
            m = evaluate_model(trainer.model, val_samples, device)
            row.update({"val_dsb": m["dsb_score"], "val_ap50": m["ap50"], "val_f1": m["f1"]})
            if snapshots:
                save_weights(out / f"epoch_{epoch + 1:03d}.pt", trainer.model, arch, config,
                             {"epoch": epoch + 1})
            if best is None or m["dsb_score"] > best["dsb_score"]:
                best = {**m, "epoch": epoch + 1}
                save_weights(out / "best.pt", trainer.model, arch, config, {"epoch": epoch + 1})
        seconds += time.perf_counter() - t0
        row["seconds"] = round(seconds, 1)
        history.append(row)
        log(json.dumps(row))
        tmp = last.with_suffix(".part")
        torch.save({"trainer": trainer.state(), "history": history, "best": best,
                    "epoch": epoch + 1, "seconds": seconds, "model": {"arch": arch, "config": config}}, tmp)
        tmp.replace(last)
        atomic_write_text(out / "history.json", json.dumps({"history": history, "best": best}, indent=1))
    if not val_samples:
        save_weights(out / "best.pt", trainer.model, arch, config, {"epoch": epochs})
    return {"history": history, "best": best, "seconds": seconds}
