"""Helpers shared by the release scripts and the experiments (not shipped in the package):
post-processing search, maps predicted the way ``segment()`` predicts them, card figures, and
pages of ``docs/`` that keep their hand-written sections (``kept_below``).

Scripts in ``scripts/`` import it directly; ``experiments/`` put this folder on ``sys.path``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from napari_nucleiseg import zoo
from napari_nucleiseg.evaluation.metrics import auroc, evaluate_image, match_status, summarize
from napari_nucleiseg.inference.measure import measure
from napari_nucleiseg.inference.postprocess import instances
from napari_nucleiseg.inference.predict import predict_maps, uncertainty_map
from napari_nucleiseg.inference.sizing import SHARPER_KINDS, sized_prediction
from napari_nucleiseg.training.dataset import read_ids, split_dsb


def tune_postprocess(maps: list[dict], samples, grid: dict | None = None,
                     min_mean_foreground=(0.0, 0.8, 0.85, 0.9, 0.93, 0.95),
                     seed: str = "border") -> tuple[dict, float]:
    """Grid-search post-processing settings for the best mean DSB score on ``samples``.

    Threshold, seed threshold (the border threshold, or with ``seed="distance"`` the distance
    threshold) and minimum size are searched jointly; the filter on a nucleus's mean
    foreground probability is then chosen for the best of those.
    """
    key = "distance_threshold" if seed == "distance" else "border_threshold"
    grid = grid or {
        "threshold": [0.4, 0.5, 0.6],
        key: [0.3, 0.4, 0.5, 0.6],
        "min_size": [4, 8, 16],
    }
    fixed = {"seed": "distance"} if seed == "distance" else {}

    def score(post):
        return float(np.mean([
            evaluate_image(s.labels, instances(mp, post))["dsb_score"]
            for mp, s in zip(maps, samples)
        ]))

    best, best_score = None, -1.0
    for t in grid["threshold"]:
        for b in grid[key]:
            for m in grid["min_size"]:
                post = {"threshold": t, key: b, "min_size": m, **fixed}
                sc = score(post)
                if sc > best_score:
                    best, best_score = post, sc
    best = {**best, "min_mean_foreground": 0.0}
    for f in min_mean_foreground:
        if f > 0:
            sc = score({**best, "min_mean_foreground": f})
            if sc > best_score:
                best, best_score = {**best, "min_mean_foreground": f}, sc
    return best, best_score


@torch.inference_mode()
def sized_segmentation(model, image: np.ndarray, device, post: dict, target: float | None, tta: bool = False,
                       diameter="auto", kind: str | None = None) -> tuple[dict, np.ndarray]:
    """``(maps, labels)`` of a prepared image of ``kind`` at its full size, predicted at the scale
    ``segment`` would use (``sizing.sized_prediction``; ``target`` None: at the image's own scale).
    The labels are ``segment``'s: a shrunk image of the ``SHARPER_KINDS`` takes its outlines from the
    first pass too, which its maps alone do not give (``kind`` None: the shrunk pass's maps and labels)."""
    model.eval()
    return sized_prediction(lambda im: predict_maps(model, im, device, tta=tta), image, post, target, diameter,
                            sharpen=kind in SHARPER_KINDS)[:2]


def sized_maps(model, image: np.ndarray, device, post: dict, target: float | None, tta: bool = False,
               diameter="auto") -> dict:
    """The maps of ``sized_segmentation`` before any outline is redrawn: what post-processing is tuned on."""
    return sized_segmentation(model, image, device, post, target, tta, diameter)[0]


def kind_segmentations(entry, samples, device=None, tta=False, diameter="auto") -> list[tuple[dict, np.ndarray]]:
    """``(maps, labels)`` of each sample as ``segment`` makes them: from the model it uses for the
    sample's kind (``ModelEntry.for_kind``), at the scale it chooses (``sizing``), with the kind's
    post-processing (``ModelEntry.postprocess``). Stained samples must be prepared for their model
    (``routed_splits``)."""
    target = entry.target_diameter()
    out = []
    for s in samples:
        model, _, dev = zoo.load_model(entry.for_kind(s.kind), device)
        out.append(sized_segmentation(model, s.image, dev, entry.postprocess(s.kind), target, tta, diameter, s.kind))
    return out


def specialist_models(card: dict) -> dict:
    """Kind -> loaded model, for the specialists a card names."""
    out = {}
    for kind, name in card.get("specialists", {}).items():
        m, _ = zoo.load_weights_file(zoo.get_entry(name).weights)
        out[kind] = m.to(memory_format=torch.channels_last)
    return out


def stained_signal(card: dict, own: str = "darkest") -> str:
    """The ``stain_signal`` stained images reach their model with under ``card``: its stained
    specialist's (``segment`` hands them to it), else the model's ``own``."""
    name = card.get("specialists", {}).get("stained")
    return zoo.get_entry(name).stain_signal() if name else own


def routed_splits(card: dict, own: str = "darkest", **kw):
    """``split_dsb`` (``kw``: its options) with the stained images prepared as the model that
    segments them under ``card`` takes them (``stained_signal``), as ``segment`` prepares them.
    Samples for ``routed_maps`` and ``validate``: prepared with the wrong signal, a stained
    specialist's figures are not the ones a user gets."""
    return split_dsb(stain_signal=stained_signal(card, own), **kw)


def kind_post(post: dict, by_kind: dict | None, kind: str) -> dict:
    """``post`` with a card's settings for images of ``kind`` (``postprocess_by_kind``), as ``segment`` uses them."""
    return {**post, **(by_kind or {}).get(kind, {})}


def routed_maps(model, samples, device, specialists: dict, post: dict, target: float | None,
                by_kind: dict | None = None) -> list[dict]:
    """Predicted maps of each sample by the model ``segment`` would use for its kind, at the
    scale it would choose (``target``: the card's ``sizing.target_diameter``; ``by_kind``: the
    card's ``postprocess_by_kind``). Stained samples must be prepared for their specialist
    (``routed_splits``)."""
    return [sized_maps(specialists.get(s.kind, model), s.image, device, kind_post(post, by_kind, s.kind), target)
            for s in samples]


def validate(model, val, device, post, specialists=None, target=None, by_kind=None):
    """Card figures of ``model`` on ``val``; ``specialists`` (kind -> model) take their kind's images,
    ``by_kind`` (a card's ``postprocess_by_kind``) adds its settings for their kind."""
    rows, conf, correct, seconds, pixels = [], [], [], 0.0, 0
    for s in val:
        t0 = time.perf_counter()
        maps, labels = sized_segmentation((specialists or {}).get(s.kind, model), s.image, device,
                                          kind_post(post, by_kind, s.kind), target, kind=s.kind)
        seconds += time.perf_counter() - t0
        pixels += s.labels.size
        rows.append(evaluate_image(s.labels, labels))
        unc = uncertainty_map(maps["foreground"], maps["variance"])
        table = measure(labels, s.image if s.image.ndim == 2 else s.image[0], maps["foreground"], unc)
        ok, _ = match_status(s.labels, labels)
        conf.extend(table["confidence"].tolist())
        correct.extend(ok[table["label"].to_numpy().astype(int)].tolist())
    out = summarize(rows)
    out["confidence_auroc"] = auroc(conf, correct)
    out["seconds_per_mp"] = seconds / (pixels / 1e6)
    return out


#: The held-out DSB test split: no choice may look at it.
DSB_TEST = Path(__file__).resolve().parent.parent / "splits" / "dsb2018_test.txt"


def tuning_images(train, n: int = 60) -> list:
    """The seeded pick of training images that post-processing is tuned on: never validation, never
    the held-out test split (``DSB_TEST``; a list from ``split_dsb`` without ``test_file`` still holds
    it, and until 2026-12-07 ``retune_postprocess.py``'s pick took 9 of its 53 images)."""
    held_out = set(read_ids(DSB_TEST))
    train = [s for s in train if s.name not in held_out]
    rng = np.random.default_rng(0)
    return [train[i] for i in rng.choice(len(train), n, replace=False)]


#: a docs page below this line is written by hand: a script that writes the page keeps it (``kept_below``)
KEEP_BELOW = "<!-- a script writes the text above this line and keeps the sections below -->"


def kept_below(report: str, old: str) -> str:
    """A script's ``report`` followed by the hand-written sections of the ``old`` page (those after
    ``KEEP_BELOW``), so that running the script again loses none of them."""
    return report.rstrip() + "\n\n" + KEEP_BELOW + (old.split(KEEP_BELOW, 1)[1] if KEEP_BELOW in old else "\n")
