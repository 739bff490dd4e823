"""Stain normalisation of stained images before segmentation, against none (a probe).

Reference statistics are pooled over the stained DSB training images (outside ``val.txt`` and the
test split). Candidates: ``reinhard`` (LAB mean and standard deviation matched, Reinhard et al.
2001) and ``hed`` (haematoxylin and eosin optical densities scaled to the reference's 99th
percentile). Only images that ``image_kind`` calls stained are changed. Rows: the stained DSB
validation images, the MoNuSeg and DeepLIIF validation tiles (``--test``: their test tiles too, to
report after a decision). Rule and result: ``docs/training_log.md``.

    python experiments/stain_normalise.py [--model resunet32] [--threads 2] [--test]
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from skimage.color import hed2rgb, lab2rgb, rgb2hed, rgb2lab

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "experiments"))
from benchmark import load_sets, run, tables, use_float32  # noqa: E402
from stained_postprocess import training_stained  # noqa: E402
from stained_sets import ihc_line  # noqa: E402

from napari_nucleiseg import segment  # noqa: E402
from napari_nucleiseg.inference.kinds import image_kind  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir  # noqa: E402


def _rgb(image: np.ndarray) -> np.ndarray:
    rgb = image[..., :3].astype(np.float64)
    return rgb / (65535.0 if image.dtype == np.uint16 else 255.0)


def _to_dtype(rgb: np.ndarray, like: np.ndarray) -> np.ndarray:
    top = 65535.0 if like.dtype == np.uint16 else 255.0
    return np.clip(np.round(rgb * top), 0, top).astype(like.dtype)


def reference(images: list) -> dict:
    """Pooled LAB mean/std and H, E 99th percentiles of the reference images."""
    lab = np.concatenate([rgb2lab(_rgb(im)).reshape(-1, 3) for im in images])
    hed = np.concatenate([rgb2hed(_rgb(im)).reshape(-1, 3) for im in images])
    return {"lab_mean": lab.mean(0), "lab_std": lab.std(0), "hed_p99": np.percentile(hed, 99, axis=0)}


def reinhard(image: np.ndarray, ref: dict) -> np.ndarray:
    lab = rgb2lab(_rgb(image))
    mean, std = lab.reshape(-1, 3).mean(0), lab.reshape(-1, 3).std(0)
    lab = (lab - mean) / np.maximum(std, 1e-6) * ref["lab_std"] + ref["lab_mean"]
    return _to_dtype(lab2rgb(lab), image)


def hed_match(image: np.ndarray, ref: dict) -> np.ndarray:
    hed = rgb2hed(_rgb(image))
    p99 = np.percentile(hed.reshape(-1, 3), 99, axis=0)
    scale = np.ones(3)
    scale[:2] = ref["hed_p99"][:2] / np.maximum(p99[:2], 1e-6)
    return _to_dtype(hed2rgb(hed * scale), image)


def normalised(fn, ref: dict, model: str):
    def seg(image):
        if image.ndim == 3 and image_kind(image) == "stained":
            image = fn(image, ref)
        return segment(image, model=model).labels
    return seg


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="resunet32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--test", action="store_true", help="also the test rows (after a decision)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    use_float32()
    root = default_data_dir()
    ref = reference([im for im, _ in training_stained(root)])
    names = {"DSB val", "MoNuSeg val", "DeepLIIF val"}
    if args.test:
        names |= {"DSB test", "MoNuSeg test", "DeepLIIF test"}
    sets = {k: [d for d in v if d[2] == "stained"] for k, v in load_sets(root, None, nc_val=True).items() if k in names}
    rows = [run("none", lambda im: segment(im, model=args.model).labels, sets),
            run("reinhard", normalised(reinhard, ref, args.model), sets),
            run("hed", normalised(hed_match, ref, args.model), sets)]
    print(tables(rows, sets))
    print(ihc_line(args.model))
    from skimage import data as skdata
    ihc = skdata.immunohistochemistry()
    for name, fn in (("reinhard", reinhard), ("hed", hed_match)):
        labels = normalised(fn, ref, args.model)(ihc)
        areas = np.bincount(labels.ravel())[1:]
        areas = areas[areas > 0]
        print(f"IHC sample, {name}: {len(areas)} objects, largest {areas.max()} px, "
              f"{(areas > 2000).sum()} over 2,000 px")


if __name__ == "__main__":
    main()
