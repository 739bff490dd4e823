"""Where a zoo model loses AP@0.5 on the validation split: errors by image kind and by cause.

A missed true nucleus (no prediction with IoU > 0.5) is a *merge* when most of it lies in a
predicted nucleus that also covers most of another true nucleus, a *miss* otherwise; a miss is
*blind* when the model's mean foreground probability over it is below 0.5 (it saw nothing),
*weak* below 0.9 (it saw something unsure, often dropped by the post-processing), else
*strong* (it saw the nucleus, but the outline is wrong: cut into pieces or spilling over). A
false positive is a *split* piece of a true nucleus, a *spurious* object on background, or a
*bad outline* (over a true nucleus but below IoU 0.5). Writes docs/error_analysis.md.

    python experiments/error_analysis.py [--model resunet32]
"""

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.segmentation import relabel_sequential

from napari_nucleiseg.training.dataset import default_data_dir, load_samples, read_ids

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from devtools import kind_segmentations, stained_signal

from napari_nucleiseg.evaluation.metrics import evaluate_image, iou_matrix
from napari_nucleiseg.zoo import get_entry

DOCS = Path(__file__).resolve().parents[1] / "docs" / "error_analysis.md"
CAUSES = ["merge", "blind", "weak", "strong", "split", "spurious", "bad outline"]


def causes(gt: np.ndarray, pred: np.ndarray, foreground: np.ndarray) -> Counter:
    """Count the causes of the missed true nuclei and the false positives of one image."""
    gt = relabel_sequential(np.asarray(gt, np.int64))[0]
    iou = iou_matrix(gt, pred)
    ng, npred = iou.shape
    overlap = np.bincount((gt * (npred + 1) + pred).ravel(),
                          minlength=(ng + 1) * (npred + 1)).reshape(ng + 1, npred + 1)
    area_g, area_p = overlap.sum(1), overlap.sum(0)
    hit = iou > 0.5
    mean_fg = ndi.mean(foreground, gt, np.arange(1, ng + 1)) if ng else np.zeros(0)
    out = Counter()
    for i in np.flatnonzero(~hit.any(1)):
        j = int(overlap[i + 1, 1:].argmax()) if npred else -1
        cover = overlap[i + 1, j + 1] / area_g[i + 1] if npred else 0.0
        holds_others = npred and (overlap[1:, j + 1] > 0.5 * area_g[1:]).sum() > 1
        if cover >= 0.5 and holds_others:
            out["merge"] += 1
        else:
            out["blind" if mean_fg[i] < 0.5 else "weak" if mean_fg[i] < 0.9 else "strong"] += 1
    for j in np.flatnonzero(~hit.any(0)):
        if overlap[0, j + 1] > 0.5 * area_p[j + 1]:
            out["spurious"] += 1
        else:
            i = int(overlap[1:, j + 1].argmax())
            out["split" if (overlap[i + 1, 1:] > 0).sum() > 1 else "bad outline"] += 1
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="default")
    ap.add_argument("--data", default=str(default_data_dir()))
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    root = Path(args.data)
    entry = get_entry(args.model)
    val = load_samples(root / "train", include=set(read_ids(root / "val.txt")),
                       stain_signal=stained_signal(entry.card, entry.stain_signal()))
    post = entry.postprocess()
    per_kind: dict[str, dict] = {}
    for s, (maps, labels) in zip(val, kind_segmentations(entry, val)):
        k = per_kind.setdefault(s.kind, {"images": 0, "ap50": [], "true": 0, "counts": Counter()})
        r = evaluate_image(s.labels, labels)
        k["images"] += 1
        k["ap50"].append(r["ap50"])
        k["true"] += r["n_true"]
        k["counts"] += causes(s.labels, labels, maps["foreground"])
    head = ("| image kind | images | true nuclei | AP@0.5 | missed: merged | blind | weak | strong "
            "| false pos.: split | spurious | bad outline |")
    lines = [head, "|" + "---|" * 11]
    total = Counter()
    for kind, k in sorted(per_kind.items(), key=lambda kv: -kv[1]["images"]):
        c = k["counts"]
        total += c
        lines.append(f"| {kind} | {k['images']} | {k['true']} | {np.mean(k['ap50']):.3f} | "
                     + " | ".join(str(c[x]) for x in CAUSES) + " |")
    all_ap = np.mean([a for k in per_kind.values() for a in k["ap50"]])
    lines.append(f"| all | {len(val)} | {sum(k['true'] for k in per_kind.values())} | {all_ap:.3f} | "
                 + " | ".join(str(total[x]) for x in CAUSES) + " |")
    table = "\n".join(lines)
    print(table)
    DOCS.write_text(
        f"# Where AP@0.5 is lost ({entry.name}, {len(val)} validation images)\n\n"
        f"`python experiments/error_analysis.py --model {entry.name}`; post-processing {post}"
        + "".join(f"; {k} images by `{n}`" for k, n in entry.card.get("specialists", {}).items())
        + "".join(f"; for {k} images also {v}" for k, v in entry.card.get("postprocess_by_kind", {}).items())
        + ".\n\n"
        f"{table}\n\n" + __doc__.split("\n\n")[1].replace("\n", " ") + "\n")


if __name__ == "__main__":
    main()
