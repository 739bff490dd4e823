"""Peak memory and time of ``segment()`` on a 4000x4000 synthetic image, in a fresh process.

Three cases: nuclei at the training size (one pass), nuclei 60-80 px across (a first pass,
then a pass shrunk to the model's nucleus size, ``sizing.py``), and nuclei 6-10 px across on a
2800x2800 image (a first pass, then a pass enlarged to ``sizing.MAX_ENLARGED_PIXELS``, 16 MP, the
pixels of the 4000x4000 cases). Each case runs in its own process so that the peak resident
memory (``ru_maxrss``) is its own.

    python benchmarks/memory_peak.py
"""

import argparse
import json
import resource
import subprocess
import sys
import time


def one(case: str) -> dict:
    import numpy as np
    import torch

    from napari_nucleiseg import segment
    from napari_nucleiseg.synthetic import synthetic_nuclei

    torch.set_num_threads(2)
    large, small = case == "large nuclei", case == "small nuclei"
    side = 700 if small else 1000
    tile = synthetic_nuclei((side, side), n_nuclei=150 if large else 1500,
                            radius=(30, 40) if large else (3, 5) if small else (7, 12), seed=0)[0]
    image = np.tile(tile, (4, 4))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    seg = segment(image)
    return {"case": case, "shape": list(image.shape), "zoom": seg.settings["zoom"], "nuclei": int(seg.labels.max()),
            "seconds": round(time.perf_counter() - t0, 1),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "before_mb": round(before)}


CASES = ("training-size nuclei", "large nuclei", "small nuclei")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", choices=CASES, help="run one case in this process and print it as JSON")
    args = ap.parse_args()
    if args.case:
        print(json.dumps(one(args.case)))
        return
    print("| case | image | zoom | nuclei | seconds | peak RSS (MB) | before segment() (MB) |\n"
          "|---|---|---|---|---|---|---|")
    for case in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", case], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"| {r['case']} | {r['shape'][0]}x{r['shape'][1]} | {r['zoom']} | {r['nuclei']} | {r['seconds']} | "
              f"{r['peak_mb']} | {r['before_mb']} |")


if __name__ == "__main__":
    main()
