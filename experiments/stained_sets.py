"""Zoo models on the stained and bright-field images of each data set, and on the IHC sample.

The DSB val/test rows keep only their stained and bright-field images; MoNuSeg and DeepLIIF are
whole. Candidates that are not shipped can be put in a user-models folder (``NUCLEISEG_USER_DIR``);
``--red-zero-shot`` feeds stained images as the red channel's darkness to models trained on the
darkest channel (the experiment that led to ``stain_signal="red"``).

    python experiments/stained_sets.py resunet32 [MODEL ...] [--threads 2] [--red-zero-shot] [--tta] [--sets 'DSB val']

The validation tiles of MoNuSeg and DeepLIIF (``splits/*_val.txt``) are rows too: candidates are
chosen on them and on DSB val, and the test rows are reported.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from skimage import data as skdata

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from benchmark import load_sets, run, tables  # noqa: E402

from napari_nucleiseg import segment, zoo  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir  # noqa: E402


def ihc_line(name: str) -> str:
    """Objects the model finds on scikit-image's IHC image, and how many are gland-sized."""
    labels = segment(skdata.immunohistochemistry(), model=name).labels
    areas = np.bincount(labels.ravel())[1:]
    areas = areas[areas > 0]
    return f"IHC sample, {name}: {len(areas)} objects, largest {areas.max()} px, {(areas > 2000).sum()} over 2,000 px"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--red-zero-shot", action="store_true")
    ap.add_argument("--tta", action="store_true", help="also score each model with test-time augmentation")
    ap.add_argument("--sets", default=None, help="only these sets, comma-separated (e.g. 'DSB val,MoNuSeg val')")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.red_zero_shot:
        zoo.ModelEntry.stain_signal = lambda self: "red"
    sets = {k: [d for d in v if not k.startswith("DSB") or d[2] in ("stained", "brightfield")]
            for k, v in load_sets(default_data_dir(), None, nc_val=True).items()
            if args.sets is None or k in args.sets.split(",")}
    rows = []
    for name in args.models:
        rows.append(run(name, lambda im, n=name: segment(im, model=n).labels, sets))
        if args.tta:
            rows.append(run(f"{name} + TTA", lambda im, n=name: segment(im, model=n, tta=True).labels, sets))
        print(ihc_line(name), flush=True)
    print(tables(rows, sets))


if __name__ == "__main__":
    main()
