"""Re-tune a shipped model's post-processing and re-measure its card's validation figures.

Tuning uses the same 60 *training* images as ``ship_model.py`` (never validation); the
weights and training record are left as they are. Images of a kind the model has a
specialist for (``ModelEntry.for_kind``) are predicted by the specialist, as ``segment`` does; the
specialists' cards then get the new settings and are re-measured on their kind's images.

    python scripts/retune_postprocess.py resunet32 unet16
"""

import argparse
import json

import torch
from devtools import routed_maps, specialist_models, tune_postprocess, tuning_images, validate

from napari_nucleiseg import zoo
from napari_nucleiseg.device import resolve_device
from napari_nucleiseg.training.dataset import default_data_dir, split_dsb

VALIDATION_KEYS = ("dsb_score", "ap50", "f1", "pq", "semantic_iou", "confidence_auroc", "tp", "fp", "fn", "n_images")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="+")
    ap.add_argument("--data", default=str(default_data_dir()))
    args = ap.parse_args()
    torch.set_num_threads(2)
    train, val = split_dsb(args.data)
    tune = tuning_images(train)
    device = resolve_device("cpu")
    for name in args.names:
        entry = zoo.get_entry(name)
        model, _ = zoo.load_weights_file(entry.weights)
        model = model.to(memory_format=torch.channels_last)
        specialists = specialist_models(entry.card)
        target = entry.target_diameter()
        maps = routed_maps(model, tune, device, specialists, entry.postprocess(), target)
        post, tune_score = tune_postprocess(maps, tune)
        m = validate(model, val, device, post, specialists, target)
        print(name, post, "tuning-set DSB", round(tune_score, 4), "validation DSB", round(m["dsb_score"], 4),
              "AP@0.5", round(m["ap50"], 4), flush=True)
        note = "images of the kinds in `specialists` were segmented by those models, as segment() does"
        write_figures(entry.weights.with_suffix(".json"), post, m, note=note if specialists else None)
        for kind, spec in specialists.items():
            path = entry.for_kind(kind).weights.with_suffix(".json")
            m = validate(spec, [s for s in val if s.kind == kind], device, post, target=target)
            print(" ", path.stem, kind, "validation DSB", round(m["dsb_score"], 4), "AP@0.5", round(m["ap50"], 4))
            write_figures(path, post, m, speed=True)


def write_figures(card_path, post, m, note=None, speed=False) -> None:
    """Store post-processing and validation figures (and the measured speed) in a card.

    A model's own speed comes from ``benchmark.py --update-cards``; a specialist's from here.
    """
    card = json.loads(card_path.read_text())
    card["postprocess"] = post
    card["validation"] = {k: m[k] for k in VALIDATION_KEYS} | ({"note": note} if note else {})
    if speed:
        card["speed"] = {**card.get("speed", {}), "seconds_per_mp": m["seconds_per_mp"]}
    card_path.write_text(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
