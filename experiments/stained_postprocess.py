"""Post-processing for stained images alone, against a model's own.

Tuned on training images only: the DSB stained ones (``--tune dsb``; the test split and ``val.txt``
excluded) or the MoNuSeg and DeepLIIF tiles of neither ``splits/*_val.txt`` nor ``*_test.txt``
(``--tune nc``); scored on the held-out stained sets (the stained and bright-field DSB validation
images, the MoNuSeg and DeepLIIF validation tiles). Maps come from ``segment()`` with ``--model``
(the default routes stained images to its specialist). Results and decisions:
``docs/training_log.md``.

    python experiments/stained_postprocess.py [--model resunet32] [--tune dsb|nc] [--borders 0.3,...,0.7]
"""

import argparse
import itertools
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchmark import load_sets  # noqa: E402

from napari_nucleiseg import segment, zoo  # noqa: E402
from napari_nucleiseg.evaluation.metrics import evaluate_image, summarize  # noqa: E402
from napari_nucleiseg.inference.kinds import image_kind  # noqa: E402
from napari_nucleiseg.inference.postprocess import instances  # noqa: E402
from napari_nucleiseg.io.images import read_image, read_labels  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, read_ids  # noqa: E402

GRID = {"threshold": [0.3, 0.4, 0.5, 0.6], "border_threshold": [0.3, 0.4, 0.5, 0.6, 0.7], "min_size": [8, 16, 32]}
SPLITS = ROOT / "splits"
MIN_MEAN_FOREGROUND = [0.0, 0.5, 0.7, 0.8, 0.85, 0.9]


def training_stained(root: Path) -> list:
    """``(image, labels)`` of the stained DSB images outside ``val.txt`` and the test split."""
    held = set(read_ids(root / "val.txt")) | set(read_ids(SPLITS / "dsb2018_test.txt"))
    pairs = [(read_image(ip), lp) for n, ip, lp in find_pairs(root / "train") if n not in held]
    return [(im, read_labels(lp)) for im, lp in pairs if image_kind(im) == "stained"]


def training_tiles(root: Path) -> list:
    """``(image, labels)`` of the MoNuSeg and DeepLIIF tiles outside their validation and test splits."""
    out = []
    for folder, split in (("monuseg2018", "monuseg2018"), ("deepliif_sample", "deepliif")):
        held = set(read_ids(SPLITS / f"{split}_val.txt")) | set(read_ids(SPLITS / f"{split}_test.txt"))
        out += [(read_image(ip), read_labels(lp)) for n, ip, lp in find_pairs(root.parent / "nc" / folder)
                if n not in held]
    return out


def maps_of(data, model: str = "resunet32") -> list:
    """``(maps, labels)`` of each image, the maps as ``segment()`` predicts them."""
    out = []
    for im, lab in data:
        s = segment(im, model=model)
        out.append(({"foreground": s.probability, "border": s.border}, lab))
    return out


def score(maps, post: dict) -> dict:
    return summarize([evaluate_image(lab, instances(mp, post)) for mp, lab in maps])


def tune(maps, base: dict) -> dict:
    """Threshold, border threshold and minimum size jointly, then the mean-foreground filter."""
    best, top = None, -1.0
    for values in itertools.product(*GRID.values()):
        post = {**base, **dict(zip(GRID, values)), "min_mean_foreground": 0.0}
        s = score(maps, post)["dsb_score"]
        if s > top:
            best, top = post, s
    for mmf in MIN_MEAN_FOREGROUND[1:]:
        post = {**best, "min_mean_foreground": mmf}
        s = score(maps, post)["dsb_score"]
        if s > top:
            best, top = post, s
    return best


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="resunet32")
    ap.add_argument("--tune", choices=("dsb", "nc"), default="dsb")
    ap.add_argument("--borders", default="0.3,0.4,0.5,0.6,0.7", help="border thresholds searched")
    args = ap.parse_args()
    GRID["border_threshold"] = [float(b) for b in args.borders.split(",")]
    torch.set_num_threads(2)
    root = default_data_dir()
    sets = load_sets(root, None, nc_val=True)
    tuning = training_stained(root) if args.tune == "dsb" else training_tiles(root)
    kinds = ("stained",) if args.tune == "dsb" else ("stained", "brightfield")
    maps = {"tuning (training images)": maps_of(tuning, args.model),
            "DSB val " + " + ".join(kinds): maps_of([(im, lab) for im, lab, k in sets["DSB val"] if k in kinds],
                                                   args.model),
            "MoNuSeg val": maps_of([(im, lab) for im, lab, _ in sets.get("MoNuSeg val", [])], args.model)}
    if sets.get("DeepLIIF val"):
        maps["DeepLIIF val"] = maps_of([(im, lab) for im, lab, _ in sets.get("DeepLIIF val", [])], args.model)
    own = zoo.get_entry(args.model).postprocess("stained")  # with the card's settings for stained images
    tuned = tune(maps["tuning (training images)"], own)
    print("own:  ", json.dumps(own))
    print("tuned:", json.dumps(tuned))
    print("| set | images | own DSB / AP@0.5 | tuned DSB / AP@0.5 |\n|---|---|---|---|")
    for name, m in maps.items():
        cells = [f"{r['dsb_score']:.3f} / {r['ap50']:.3f}" for r in (score(m, own), score(m, tuned))]
        print(f"| {name} | {len(m)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
