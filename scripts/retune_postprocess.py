"""Re-tune a shipped model's post-processing and re-measure its card's validation figures.

Tuning uses 60 *training* images (``devtools.tuning_images``: never validation, never the held-out
DSB test split; before 2026-12-07 this script's pick held 9 test images, see docs/training_log.md);
the weights and training record are left as they are. Images of a kind the model has a
specialist for (``ModelEntry.for_kind``) are predicted by the specialist, as ``segment`` does; the
specialists' cards then get the new settings and are re-measured on their kind's images.

    python scripts/retune_postprocess.py resunet32 unet16
    python scripts/retune_postprocess.py resunet32 --measure-only   # keep the settings, re-measure

Settings a card tunes for one kind of image (``postprocess_by_kind``) are kept and applied to
that kind's images, as ``segment`` does.
"""

import argparse
import datetime
import json

import torch
from devtools import (
    routed_maps,
    routed_splits,
    specialist_models,
    tune_postprocess,
    tuning_images,
    validate,
)

from napari_nucleiseg import zoo
from napari_nucleiseg.device import describe, resolve_device
from napari_nucleiseg.training.dataset import default_data_dir

VALIDATION_KEYS = ("dsb_score", "ap50", "f1", "pq", "aji", "semantic_iou", "confidence_auroc", "tp", "fp", "fn",
                   "n_images")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="+")
    ap.add_argument("--data", default=str(default_data_dir()))
    ap.add_argument("--measure-only", action="store_true",
                    help="keep the card's post-processing; only re-measure its validation figures (on this host)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    device = resolve_device("cpu")
    splits = {}
    for name in args.names:
        entry = zoo.get_entry(name)
        signal = entry.for_kind("stained").stain_signal()
        if signal not in splits:  # stained images are prepared for the model that segments them
            splits[signal] = routed_splits(entry.card, entry.stain_signal(), root=args.data)
        train, val = splits[signal]
        tune = tuning_images(train)
        model, _ = zoo.load_weights_file(entry.weights)
        model = model.to(memory_format=torch.channels_last)
        specialists = specialist_models(entry.card)
        target = entry.target_diameter()
        by_kind = entry.card.get("postprocess_by_kind", {})
        if args.measure_only:
            post, tune_score = entry.postprocess(), None
        else:
            maps = routed_maps(model, tune, device, specialists, entry.postprocess(), target, by_kind)
            post, tune_score = tune_postprocess(maps, tune)
        m = validate(model, val, device, post, specialists, target, by_kind)
        print(name, post, "tuning-set DSB", tune_score and round(tune_score, 4), "validation DSB",
              round(m["dsb_score"], 4), "AP@0.5", round(m["ap50"], 4), flush=True)
        note = "images of the kinds in `specialists` were segmented by those models, as segment() does"
        write_figures(entry.weights.with_suffix(".json"), post, m, note=note if specialists else None, device=device)
        for kind, spec in specialists.items():
            path = entry.for_kind(kind).weights.with_suffix(".json")
            m = validate(spec, [s for s in val if s.kind == kind], device, post, target=target, by_kind=by_kind)
            print(" ", path.stem, kind, "validation DSB", round(m["dsb_score"], 4), "AP@0.5", round(m["ap50"], 4))
            write_figures(path, post, m, speed=True, device=device)


def write_figures(card_path, post, m, note=None, speed=False, device=None) -> None:
    """Store post-processing and validation figures (and the measured speed) in a card, with the
    device and date they were measured on.

    A model's own speed comes from ``benchmark.py --update-cards``; a specialist's from here.
    """
    card = json.loads(card_path.read_text())
    card["postprocess"] = post
    measured = f"{describe(device)}, {datetime.date.today()}, scripts/retune_postprocess.py" if device else None
    card["validation"] = ({k: m[k] for k in VALIDATION_KEYS if k in m} | ({"note": note} if note else {})
                          | ({"measured": measured} if measured else {}))
    if speed:
        card["speed"] = {**card.get("speed", {}), "seconds_per_mp": m["seconds_per_mp"]}
        if measured:
            card["speed"].update(device=measured, includes="preprocessing excluded; prediction + watershed, no TTA")
    card_path.write_text(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
