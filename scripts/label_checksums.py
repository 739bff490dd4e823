"""Take the label checksums of ``tests/test_label_checksums.py`` again (after new weights ship),
for both precisions: bf16 autocast (CPUs that compute it natively) and float32. Run it on a CPU
with native bf16: elsewhere the emulated bf16 differs from it (tests/data/label_checksums.json, "note").

    python scripts/label_checksums.py [--precision bf16] [--dry-run]

``--precision`` takes one set again and keeps the other; ``--dry-run`` only says what changed. A
float32 set taken on another kind of CPU (AVX-512 against AVX2) may differ from the stored one: check
with ``--dry-run`` before writing it.
"""

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from napari_nucleiseg import device, segment
from napari_nucleiseg.inference.kinds import image_kind
from napari_nucleiseg.io.images import read_image
from napari_nucleiseg.training.dataset import default_data_dir

FILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "label_checksums.json"


def checksums(names, bf16: bool) -> dict:
    """name -> kind, nucleus count, zoom and SHA-256 of the default model's labels."""
    device.cpu_has_bf16 = lambda: bf16  # autocast_dtype reads it at each call
    out = {}
    for name in names:
        image = read_image(default_data_dir() / "train" / "images" / f"{name}.png")
        seg = segment(image, device="cpu")
        labels = np.ascontiguousarray(seg.labels, np.int32)
        out[name] = {"kind": image_kind(image), "n": len(np.unique(labels)) - 1, "zoom": seg.zoom,
                     "sha256": hashlib.sha256(labels.tobytes()).hexdigest()}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precision", choices=("bf16", "fp32", "both"), default="both")
    ap.add_argument("--dry-run", action="store_true", help="print what changed, write nothing")
    args = ap.parse_args()
    old = json.loads(FILE.read_text())
    names = sorted(set(old["bf16"]) | set(old["fp32"]))
    new = dict(old)
    for precision in ("bf16", "fp32") if args.precision == "both" else (args.precision,):
        new[precision] = checksums(names, precision == "bf16")
        changed = [n[:12] for n in names if new[precision][n] != old[precision].get(n)]
        print(precision, "changed:", ", ".join(changed) or "none")
    if not args.dry_run:
        FILE.write_text(json.dumps(new, indent=1) + "\n")


if __name__ == "__main__":
    main()
