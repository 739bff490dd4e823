"""Batch throughput: images per second with 1 worker (in-process) vs a pool of 2 worker processes.

Runs ``batch.run_batch`` (configurations WORKERSxTHREADS: 1 worker runs in this process with
THREADS torch threads; more workers are a process pool with THREADS torch threads each) on
the first N images (default 50) of the shared DSB training images
(``dataset.default_data_dir() / "train" / "images"``; skipped cleanly when absent), each setting
into a fresh output folder, all outputs written (labels, probability, uncertainty, CSV). Wall
time includes starting the worker processes and loading the model in each. Writes the table
to docs/batch_benchmark.md.

    python benchmarks/batch_speed.py [--images 50] [--configs 1x1 2x1 1x2] [--model default]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

from napari_nucleiseg.batch import BatchOptions, run_batch
from napari_nucleiseg.io.images import is_image_file
from napari_nucleiseg.training.dataset import default_data_dir

DOCS = Path(__file__).resolve().parents[1] / "docs" / "batch_benchmark.md"


def link_images(src: Path, dst: Path, n: int) -> int:
    """Symlink the first ``n`` images of ``src`` into ``dst``; returns the total megapixels."""
    from napari_nucleiseg.io.images import read_image

    dst.mkdir(parents=True, exist_ok=True)
    mp = 0.0
    for p in sorted(f for f in src.iterdir() if is_image_file(f))[:n]:
        (dst / p.name).symlink_to(p)
        mp += np.prod(read_image(p).shape[:2]) / 1e6
    return mp


def measure(images: Path, workers: int, threads: int, options: BatchOptions, workdir: Path) -> dict:
    """Wall time of one batch run into a fresh output folder (and when its first image was done)."""
    out = workdir / f"out_{workers}x{threads}"
    first: list[float] = []
    t0 = time.perf_counter()
    res = run_batch(images, out, options, workers=workers, threads_per_worker=threads,
                    progress=lambda ev: first or first.append(time.perf_counter() - t0))
    wall = time.perf_counter() - t0
    return {"workers": workers, "threads": threads, "images": len(res.summary), "ok": res.n_ok,
            "seconds": wall, "img_per_s": len(res.summary) / wall, "first": first[0] if first else float("nan")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=50)
    ap.add_argument("--configs", nargs="+", default=["1x1", "2x1", "1x2"],
                    help="WORKERSxTHREADS settings to time, in this order")
    ap.add_argument("--model", default="default")
    ap.add_argument("--note", default="", help="a sentence added under the table (e.g. what else ran)")
    ap.add_argument("--no-write", action="store_true", help="do not update docs/batch_benchmark.md")
    args = ap.parse_args(argv)

    src = default_data_dir() / "train" / "images"
    if not src.is_dir():
        print(f"skipped: shared data not found at {src}")
        return 0
    options = BatchOptions(model=args.model)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nucleiseg-batch-bench-") as tmp:
        tmp = Path(tmp)
        mp = link_images(src, tmp / "images", args.images)
        for cfg in args.configs:
            w, t = (int(v) for v in cfg.lower().split("x"))
            r = measure(tmp / "images", w, t, options, tmp)
            rows.append(r)
            print(f"{w} worker(s) x {t} thread(s): {r['images']} images ({r['ok']} ok) in {r['seconds']:.1f} s = "
                  f"{r['img_per_s']:.2f} images/s", flush=True)

    from napari_nucleiseg import zoo

    model = zoo.get_entry(args.model).name
    base = rows[0]["img_per_s"]
    lines = [
        "# Batch throughput",
        "",
        f"`python benchmarks/batch_speed.py` on {date.today()}: the first {args.images} images of the shared "
        f"DSB training set ({mp:.1f} megapixels in all), model `{model}`, no TTA, all outputs written "
        "(labels, probability, uncertainty TIFFs and the per-nucleus CSV). Wall time includes starting "
        "the worker processes and loading the model once in each.",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}.",
        "",
        "| workers | torch threads each | images | first image done after (s) | total seconds | images / s "
        "| speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['workers']} | {r['threads']} | {r['images']} | {r['first']:.1f} | {r['seconds']:.1f} | "
                     f"{r['img_per_s']:.2f} | {r['img_per_s'] / base:.2f}x |")
    if args.note:
        lines += ["", args.note]
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        DOCS.parent.mkdir(parents=True, exist_ok=True)
        DOCS.write_text(text)
        print(f"wrote {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
