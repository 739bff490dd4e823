"""What a fine-tuned model records about itself (its card) and the line the user reads at the end."""

from __future__ import annotations

import dataclasses
import datetime as _dt

from .result import FinetuneResult


@dataclasses.dataclass
class RunSettings:
    """The settings of one run, as the model card records them (``replay_images`` is a count)."""

    steps: int | None
    time_budget_s: float | None
    lr: float
    batch_size: int
    crop: int
    freeze_bn: bool
    anchor: float
    replay: float
    replay_labels: str
    replay_images: int
    blend: float
    invert: bool | None
    seed: int

    def for_card(self, device: str) -> dict:
        """The card's ``finetune.settings``: these settings and the device described."""
        return {**dataclasses.asdict(self), "device": device}


def model_card(entry, start, post: dict, info: list, val_info: list, settings: dict, routes: dict,
               result: FinetuneResult) -> dict:
    """The card of a model fine-tuned from ``entry``.

    Parameters
    ----------
    entry, start : zoo.ModelEntry
        The base model and the model training started from (its specialist for the images' kind).
    post : dict
        Post-processing settings (the base model's; its settings by image kind are copied too).
    info, val_info : list of dict
        Training and validation images (``prepare_pairs``).
    settings : dict
        ``RunSettings.for_card``.
    routes : dict
        Image kind -> model for the kinds the run was not shown (``start_and_routes``).
    result : FinetuneResult
        The run (its ``entry`` is not needed).

    Returns
    -------
    dict
    """
    card = {
        "description": f"{entry.name} fine-tuned on {len(info)} image(s)",
        "parent": entry.name,
        "parent_weights": start.weights.name,
        "postprocess": post,
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
        "finetune": {
            "images": info,
            "validation_images": val_info,
            "settings": settings,
            "steps_done": result.steps_done,
            "seconds": round(result.seconds, 1),
            "cancelled": result.cancelled,
            "best_step": result.best_step,
            "selected_by": "validation DSB score" if val_info else "smoothed training loss",
            "base_validation_dsb": result.base_score,
            "best_validation_dsb": result.best_score,
            "loss_curve": [round(v, 5) for v in result.losses],
            "validation_curve": [[s, round(v, 5)] for s, v in result.validation],
        },
    }
    if routes:
        card["specialists"] = routes
    for key in ("parameters", "input", "channels", "sizing", "postprocess_by_kind", "outputs", "licence"):
        if key in entry.card:
            card[key] = entry.card[key]
    if entry.for_kind("stained").stain_signal() != "darkest":  # the signal its stained pairs were prepared with
        card["stain_signal"] = entry.for_kind("stained").stain_signal()
    return card


def summary(result: FinetuneResult, asked_name: str, validated: bool) -> str:
    """One line for the user: what was saved, after how long, and what validation said."""
    parts = [f"saved {result.entry.name!r} after {result.steps_done} steps in {result.seconds:.0f} s"]
    if result.cancelled:
        parts.append("(cancelled: best weights so far kept)")
    if result.entry.name != asked_name:
        parts.append(f"(the name {asked_name!r} was taken meanwhile)")
    if validated:
        if result.best_step == 0:
            parts.append(f"; validation DSB {result.base_score:.3f} did not improve, so the saved weights "
                         f"are the base model's")
        else:
            parts.append(f"; validation DSB {result.base_score:.3f} -> {result.best_score:.3f} "
                         f"(step {result.best_step})")
    return " ".join(parts).replace(" ;", ";")
