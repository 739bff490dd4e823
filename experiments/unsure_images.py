"""Does an image's mean nucleus confidence tell how well it was segmented?

Per image, a model's mean nucleus confidence (``measure.mean_confidence``) against its DSB score,
and what its cut flags (``ModelEntry.unsure_below``: card ``confidence.unsure_below``, else
``UNSURE_BELOW``). The cut was chosen on the ``choice`` sets (DSB val, and the MoNuSeg and DeepLIIF
tiles outside their test splits: the permissive default never trained on those); the ``test`` sets
(DSB test, MoNuSeg test, DeepLIIF test) only report.

    python experiments/unsure_images.py [--sets choice|test] [--model NAME] [--threads 2]

Results: docs/unsure_images.md.
"""

import argparse
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

from napari_nucleiseg import segment
from napari_nucleiseg.evaluation.metrics import evaluate_image
from napari_nucleiseg.inference.measure import is_unsure, mean_confidence
from napari_nucleiseg.io.images import read_image, read_labels
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, read_ids
from napari_nucleiseg.zoo import get_entry

SPLITS = Path(__file__).resolve().parents[1] / "splits"


def image_sets(which: str) -> dict[str, list]:
    """``{set name: [(image path, labels path)]}`` of the choice or the test sets."""
    root = default_data_dir()
    if not root.is_dir():
        raise SystemExit(f"shared DSB data not found at {root}")
    nc = root.parent / "nc"
    dsb = find_pairs(root / "train")
    val, test = set(read_ids(root / "val.txt")), set(read_ids(SPLITS / "dsb2018_test.txt"))
    sets = {"DSB val" if which == "choice" else "DSB test":
            [(ip, lp) for n, ip, lp in dsb if n in (val if which == "choice" else test)]}
    for folder, split, name in (("monuseg2018", "monuseg2018_test.txt", "MoNuSeg"),
                                ("deepliif_sample", "deepliif_test.txt", "DeepLIIF")):
        if (nc / folder).is_dir():
            held = set(read_ids(SPLITS / split))
            sets[f"{name} {'non-test' if which == 'choice' else 'test'}"] = [
                (ip, lp) for n, ip, lp in find_pairs(nc / folder) if (n in held) == (which == "test")]
    return sets


def _mean(values: np.ndarray) -> str:
    return f"{values.mean():.3f}" if len(values) else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sets", choices=("choice", "test"), default="choice")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    below = get_entry(args.model).unsure_below()  # the model's cut (card confidence.unsure_below)
    rows = []
    for name, pairs in image_sets(args.sets).items():
        for ip, lp in pairs:
            seg = segment(read_image(ip), model=args.model)
            rows.append((name, mean_confidence(seg.table), evaluate_image(read_labels(lp), seg.labels)["dsb_score"]))
    conf = np.array([np.nan if c is None else c for _, c, _ in rows])
    score = np.array([s for _, _, s in rows])
    print(f"Spearman correlation of mean confidence and DSB score, {len(rows)} images: "
          f"{spearmanr(conf, score, nan_policy='omit').correlation:.3f}")
    print(f"| set | images | mean confidence min / median | flagged (below {below:g}) | DSB flagged "
          "| DSB not flagged |")
    print("|---|---|---|---|---|---|")
    for name in dict.fromkeys(n for n, _, _ in rows):
        pick = np.array([n == name for n, _, _ in rows])
        flag = pick & np.array([is_unsure(c, below) for _, c, _ in rows])
        rest = pick & ~flag
        print(f"| {name} | {pick.sum()} | {np.nanmin(conf[pick]):.3f} / {np.nanmedian(conf[pick]):.3f} | "
              f"{flag.sum()} | {_mean(score[flag])} | {_mean(score[rest])} |")


if __name__ == "__main__":
    main()
