"""Post-processing for fluorescence images tuned with the outline refinement in the loop.

The shared settings were tuned on maps alone; since then a shrunk fluorescence image's nuclei are
redrawn inside the mean of both passes' foregrounds (``sizing.sharper_foreground``,
``postprocess.redraw_outlines``). This tunes the fluorescence images' settings on the labels
``segment()`` would make, refinement included, on the fluorescence images among the 60 seeded
tuning images (training images only). Each image's maps are cached at the zoom the shipped settings
choose. ``--val`` then scores the shipped and the tuned settings on DSB val through ``segment()``
(the tuned ones as the card's ``postprocess_by_kind["fluorescence"]``). Results and the rule:
``docs/training_log.md``.

    python experiments/refined_postprocess.py [--model resunet32] [--val] [--shared] [--float32]
        [--settings '{"border_threshold": 0.3}' | --grid '{"min_size_fraction": [0, 0.1]}']
"""

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchmark import load_sets, use_float32  # noqa: E402
from devtools import routed_splits, tuning_images  # noqa: E402

from napari_nucleiseg import segment, zoo  # noqa: E402
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize  # noqa: E402
from napari_nucleiseg.inference import sizing  # noqa: E402
from napari_nucleiseg.inference.predict import predict_maps  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir  # noqa: E402

KIND = "fluorescence"
GRID = {"threshold": [0.4, 0.45, 0.5, 0.55, 0.6], "border_threshold": [0.3, 0.4, 0.5, 0.6, 0.7],
        "min_size": [8, 16, 24]}
MEAN_FOREGROUND = [0.0, 0.8, 0.85, 0.9]


def cached_passes(entry, samples) -> list[tuple[dict, np.ndarray | None]]:
    """``(maps, mean)`` per sample: the maps post-processing runs on (the shrunk pass's, scaled back
    up, where the image is shrunk) and, for an image the refinement redraws, the mean foreground."""
    model, _, device = zoo.load_model(entry, "cpu")
    post, target = entry.postprocess(KIND), entry.target_diameter()

    def predict(im):
        return predict_maps(model, im, device)

    out = []
    for s in samples:
        maps, _, zoom = sizing.sized_prediction(predict, s.image, post, target)
        mean = None
        if sizing.REFINE_MIN_ZOOM <= zoom < 1.0:
            mean = sizing.sharper_foreground(predict(s.image)["foreground"].copy(), maps["foreground"])
        out.append((maps, mean))
    return out


def tune(passes, samples, shipped: dict, given: dict | None = None, grid: dict = GRID
         ) -> tuple[dict, float, float]:
    """Best settings on the cached passes (``given``: these instead of a search; a ``grid`` other than
    ``GRID``: searched alone, the rest as shipped), their mean DSB score, and the shipped settings' score."""
    def score(post):
        return float(np.mean([evaluate_image(s.labels, sizing.refined_labels(mp, post, mean))["dsb_score"]
                              for (mp, mean), s in zip(passes, samples)]))

    if given is not None:
        return {**shipped, **given}, score({**shipped, **given}), score(shipped)
    best, best_score = None, -1.0
    for values in itertools.product(*grid.values()):
        post = {**shipped, **dict(zip(grid, values))}
        if grid is GRID:
            post["min_mean_foreground"] = 0.0
        sc = score(post)
        if sc > best_score:
            best, best_score = post, sc
    for f in MEAN_FOREGROUND[1:] if grid is GRID else ():
        sc = score({**best, "min_mean_foreground": f})
        if sc > best_score:
            best, best_score = {**best, "min_mean_foreground": f}, sc
    return best, best_score, score(shipped)


def val_scores(model: str, images) -> dict:
    """``segment()``'s scores on ``(image, labels, kind)`` triples: all, and the fluorescence images."""
    rows = [(evaluate_image(truth, segment(image, model=model).labels), kind) for image, truth, kind in images]
    return {"all": summarize([r for r, _ in rows]), KIND: summarize([r for r, k in rows if k == KIND])}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="resunet32")
    ap.add_argument("--val", action="store_true", help="also score both settings on DSB val through segment()")
    ap.add_argument("--settings", type=json.loads, default=None,
                    help="score these settings (JSON, over the shared ones) instead of searching")
    ap.add_argument("--shared", action="store_true",
                    help="compare with the model's shared settings, without its own for fluorescence")
    ap.add_argument("--grid", type=json.loads, default=None,
                    help="search this grid (JSON: setting -> values) instead, the other settings as shipped")
    ap.add_argument("--float32", action="store_true", help="no bf16 autocast even where the CPU computes it")
    args = ap.parse_args()
    torch.set_num_threads(2)
    if args.float32:
        use_float32()
    entry = zoo.get_entry(args.model)
    train, _ = routed_splits(entry.card, entry.stain_signal(), root=str(default_data_dir()))
    samples = [s for s in tuning_images(train) if s.kind == KIND]
    if args.shared:
        entry.card.get("postprocess_by_kind", {}).pop(KIND, None)
    passes = cached_passes(entry, samples)
    refined = sum(mean is not None for _, mean in passes)
    shipped = entry.postprocess(KIND)
    best, best_score, shipped_score = tune(passes, samples, shipped, args.settings, args.grid or GRID)
    print(f"tuning: {len(samples)} {KIND} images ({refined} refined); shipped {shipped} {shipped_score:.4f}; "
          f"tuned {best} {best_score:.4f}", flush=True)
    if not args.val:
        return
    images = [d for d in load_sets(default_data_dir(), None)["DSB val"]]
    before = val_scores(args.model, images)
    assert zoo.get_entry(args.model).card is entry.card, "segment() would not see the tuned settings"
    entry.card.setdefault("postprocess_by_kind", {})[KIND] = {k: v for k, v in best.items() if shipped.get(k) != v}
    after = val_scores(args.model, images)
    for name, m in (("shipped", before), ("tuned", after)):
        print(f"DSB val, {name}: all {m['all']['dsb_score']:.4f} / {m['all']['ap50']:.4f}; "
              f"{KIND} {m[KIND]['dsb_score']:.4f} / {m[KIND]['ap50']:.4f}")


if __name__ == "__main__":
    main()
