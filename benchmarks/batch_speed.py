"""Batch throughput: images per second with 1 worker (in-process) vs a pool of 2 worker processes.

Runs ``batch.run_batch`` (configurations WORKERSxTHREADS: 1 worker runs in this process with
THREADS torch threads; more workers are a process pool with THREADS torch threads each) on
the first N images (default 50) of the shared DSB training images
(``dataset.default_data_dir() / "train" / "images"``; skipped cleanly when absent), each setting
into a fresh output folder, all outputs written (labels, probability, uncertainty, CSV). Before
any configuration is timed, this process loads the model (and its specialists) and segments one
image, each timed on its own row, so the in-process configurations all start warm; a pool's
wall time still includes starting its worker processes and loading the model in each, as it
would in use. Writes the table to docs/batch_benchmark.md.

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


def warm_up(images: Path, options: BatchOptions) -> dict:
    """Load the model and its specialists into this process's cache, then segment one image, timing each.

    Done before any configuration is timed, so that no in-process configuration pays for the load
    (or for torch's first call) that the others then reuse.
    """
    from napari_nucleiseg import zoo
    from napari_nucleiseg.batch.fingerprint import weights_sha256
    from napari_nucleiseg.inference.kinds import KINDS
    from napari_nucleiseg.inference.stack import segment_any
    from napari_nucleiseg.io.images import read_image

    t0 = time.perf_counter()
    entry = zoo.get_entry(options.model)
    for kind in (None, *KINDS):
        zoo.load_model(entry.for_kind(kind), options.device)
    weights_sha256(options.model)
    load = time.perf_counter() - t0
    first = sorted(f for f in images.iterdir() if is_image_file(f))[0]
    image = read_image(first)
    t0 = time.perf_counter()
    segment_any(image, options.segment_options())
    return {"load": load, "first_call": time.perf_counter() - t0, "files": len(entry.weight_files())}


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
    load_start = os.getloadavg()[0]  # a shared host: other jobs slow every configuration down

    src = default_data_dir() / "train" / "images"
    if not src.is_dir():
        print(f"skipped: shared data not found at {src}")
        return 0
    options = BatchOptions(model=args.model)
    rows = []
    with tempfile.TemporaryDirectory(prefix="nucleiseg-batch-bench-") as tmp:
        tmp = Path(tmp)
        mp = link_images(src, tmp / "images", args.images)
        warm = warm_up(tmp / "images", options)
        print(f"model load (this process, before timing): {warm['load']:.1f} s; first segment() call: "
              f"{warm['first_call']:.1f} s", flush=True)
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
        "(labels, probability, uncertainty TIFFs and the per-nucleus CSV). Before any configuration was "
        "timed, this process loaded the model and segmented one image (the first two rows, timed on their "
        "own), so the 1-worker configurations all start warm; a pool's wall time includes starting its "
        "worker processes and loading the model once in each.",
        "",
        f"Machine: {os.cpu_count()} CPU cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; 1-minute load average {load_start:.2f} at the start of the run "
        f"and {os.getloadavg()[0]:.2f} at the end (other jobs on the host slow every row down).",
        "",
        "| workers | torch threads each | images | first image done after (s) | total seconds | images / s "
        "| speed-up |",
        "|---|---|---|---|---|---|---|",
        f"| model load ({warm['files']} weights file{'s' * (warm['files'] != 1)}, this process, before timing) "
        f"| | | | {warm['load']:.1f} | | |",
        f"| first segment() call (1 image, this process, before timing) | | 1 | | {warm['first_call']:.1f} | | |",
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
