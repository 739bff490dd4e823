"""Speed of ``segment()`` for comparing two versions of the code on one noisy host.

Prints one line: seconds per megapixel of the whole ``segment()`` call on DSB val and DSB test
(with their DSB score / AP@0.5, to show the change kept the results), and on one camera-sized
1040x1392 image (four 520x696 DSB validation images side by side) that needs several network
tiles. Run it for each version in turn, several times, so that both see the same host:

    git worktree add /tmp/before <commit>
    for i in 1 2; do
        PYTHONPATH=/tmp/before/src python benchmarks/speed_ab.py before
        python benchmarks/speed_ab.py after
    done

The worktree's ``src`` comes first on the path, so the same environment runs the old code
(check the printed module path).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from benchmark import run, start, warm_up  # noqa: E402

import napari_nucleiseg  # noqa: E402
from napari_nucleiseg import segment, zoo  # noqa: E402


def camera_sized(val: list) -> np.ndarray:
    """Four 520x696 fluorescence validation images as one 1040x1392 image."""
    parts = [im for im, _, kind in val if im.shape[:2] == (520, 696) and kind == "fluorescence"][:4]
    if len(parts) < 4:
        raise SystemExit("fewer than four 520x696 fluorescence images in DSB val")
    return np.concatenate([np.concatenate(parts[:2], 1), np.concatenate(parts[2:], 1)], 0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("label", help="name of this version in the printed line")
    ap.add_argument("--model", default="default")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    _, sets = start(args.threads, None)
    sets = {name: sets[name] for name in ("DSB val", "DSB test")}
    big = camera_sized(sets["DSB val"])
    warm_up(zoo.get_entry(args.model), sets)  # every kind's network loaded, first shapes set up
    t0 = time.perf_counter()
    nuclei = int(segment(big, model=args.model).labels.max())
    big_s = (time.perf_counter() - t0) / (big.shape[0] * big.shape[1] / 1e6)
    result = run(args.label, lambda im: segment(im, model=args.model).labels, sets)
    cells = [args.label, f"1040x1392 {big_s:.3f} s/MP ({nuclei} nuclei)"]
    cells += [f"{name} {result[name]['dsb_score']:.4f} / {result[name]['ap50']:.4f} {result[name]['s_per_mp']:.3f} s/MP"
              for name in sets]
    print(" | ".join(cells), f"({Path(napari_nucleiseg.__file__).parent}, torch {torch.get_num_threads()} threads)",
          flush=True)


if __name__ == "__main__":
    main()
