"""How well do candidate per-nucleus confidences separate correct nuclei (IoU > 0.5) from wrong ones?

Prints the AUROC of each candidate on the validation split (model default: the zoo default).

    python experiments/confidence_study.py [--model NAME] [--tta]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from napari_nucleiseg import zoo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from devtools import kind_segmentations, routed_splits

from napari_nucleiseg.evaluation.metrics import auroc, match_status
from napari_nucleiseg.inference.measure import nucleus_confidence
from napari_nucleiseg.inference.predict import uncertainty_map


def candidates(labels, maps):
    idx = np.arange(1, labels.max() + 1)
    fg, border = maps["foreground"], maps["border"]
    unc = uncertainty_map(fg, maps["variance"])
    inner = ndi.grey_erosion(labels, size=3)
    inner = np.where((inner == labels) & (labels > 0), labels, 0)
    area = ndi.sum(np.ones_like(fg), labels, idx)
    return {
        "1 - mean uncertainty (nucleus) [shipped]": nucleus_confidence(labels, unc, idx),
        "1 - mean uncertainty (nucleus + 1 px ring)": 1 - np.asarray(
            ndi.mean(unc, np.where(labels > 0, labels, ndi.grey_dilation(labels, size=3)), idx)),
        "mean foreground probability": np.asarray(ndi.mean(fg, labels, idx)),
        "1 - mean border prob. inside": 1 - np.nan_to_num(np.asarray(ndi.mean(border, inner, idx)), nan=0.0),
        "log area": np.log(area),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="default")
    ap.add_argument("--tta", action="store_true")
    args = ap.parse_args()
    entry = zoo.get_entry(args.model)
    _, val = routed_splits(entry.card, entry.stain_signal())
    scores, correct = {}, []
    for s, (maps, labels) in zip(val, kind_segmentations(entry, val, "cpu", tta=args.tta)):
        if labels.max() == 0:
            continue
        ok, _ = match_status(s.labels, labels)
        correct.extend(ok[1:].tolist())
        for k, v in candidates(labels, maps).items():
            scores.setdefault(k, []).extend(np.asarray(v).tolist())
    print(f"{entry.name}: {len(correct)} predicted nuclei, {np.mean(correct):.3f} correct")
    for k, v in scores.items():
        print(f"  AUROC {auroc(v, correct):.3f}  {k}")


if __name__ == "__main__":
    main()
