"""DSB test figures of the default with and without the 9 test images that retune_postprocess.py's
60 tuning images held before 2026-12-07 (docs/training_log.md). float32, 2 threads, the classical
baseline in the same run.

    python experiments/dsb_test_leak.py
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT / "scripts")]
import benchmark as B  # noqa: E402

from napari_nucleiseg import zoo  # noqa: E402
from napari_nucleiseg.training.dataset import default_data_dir, find_pairs, read_ids  # noqa: E402


def leaked_ids(data: Path) -> set[str]:
    """The test ids the old pick took: 60 seeded images of the non-validation list, test split included."""
    val, test = set(read_ids(data / "val.txt")), set(read_ids(ROOT / "splits" / "dsb2018_test.txt"))
    names = [n for n, _, _ in find_pairs(data / "train") if n not in val]
    rng = np.random.default_rng(0)  # the old devtools.tuning_images
    return {names[i] for i in rng.choice(len(names), 60, replace=False)} & test


def main():
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    torch.set_num_threads(2)
    data = default_data_dir()
    leaked = leaked_ids(data)
    print(f"tuning images in DSB test: {len(leaked)}")
    B.use_float32()
    sets = B.load_sets(data, None)
    test = set(read_ids(ROOT / "splits" / "dsb2018_test.txt"))
    names = [n for n, _, _ in find_pairs(data / "train") if n in test]
    clean = [x for n, x in zip(names, sets["DSB test"]) if n not in leaked]
    sets = {"DSB val": sets["DSB val"], "DSB test": sets["DSB test"], "DSB test, never tuned on": clean}
    entry = zoo.get_entry("default")
    for row in (B.run("classical", B.classical, sets), B.model_row(entry, sets)):
        for name in ("DSB test", "DSB test, never tuned on"):
            s = row[name]
            print(f"{row['name']:12s} {name:26s} n={s['n_images']:3d} DSB {s['dsb_score']:.4f} AP50 {s['ap50']:.4f}")


if __name__ == "__main__":
    main()
