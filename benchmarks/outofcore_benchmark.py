"""Out-of-core segmentation: peak memory and speed on a large synthetic mosaic.

Builds a SIZE x SIZE mosaic of seeded synthetic fields tile by tile (``synthetic.mosaic_tile``),
written as a tiled BigTIFF and as an OME-Zarr, then, each in its own process (so each peak RSS is
its own):

* in-memory ``segment()`` on a CROP x CROP crop, and out-of-core on the same crop (seconds per
  megapixel, peak RSS);
* out-of-core on the crop with 1 and 2 local workers (throughput);
* out-of-core on the whole mosaic, read from the OME-Zarr (peak RSS, s/MP).

    python benchmarks/outofcore_benchmark.py --size 10000 --crop 4000
    python benchmarks/outofcore_benchmark.py --size 20000 --crop 4000     # the full-size run
    python benchmarks/outofcore_benchmark.py --crop 3000 --crop-only      # speed vs segment() only

Results are in docs/outofcore.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TILE = 256


def build(folder: Path, size: int, crop: int, skip_full: bool = False) -> dict[str, Path]:
    """The mosaic as tiled BigTIFF and OME-Zarr, and its top-left crop as a tiled TIFF (only the
    crop with ``skip_full``)."""
    import tifffile
    import zarr

    from napari_nucleiseg.synthetic import mosaic_tile, mosaic_tiles

    tiles = mosaic_tiles(16, TILE, seed=0)

    def tile_stream(side):
        for iy in range(-(-side // TILE)):
            for ix in range(-(-side // TILE)):
                yield np.ascontiguousarray(mosaic_tile(tiles, iy, ix)[0])

    paths = {"tiff": folder / f"mosaic_{size}.tif", "zarr": folder / f"mosaic_{size}.ome.zarr",
             "crop": folder / f"crop_{crop}.tif"}
    for key, side in (("crop", crop),) if skip_full else (("tiff", size), ("crop", crop)):
        tifffile.imwrite(paths[key], tile_stream(side), shape=(side, side), dtype=np.uint16,
                         tile=(TILE, TILE), bigtiff=True, compression="zlib")
    if skip_full:
        return paths
    group = zarr.open_group(str(paths["zarr"]), mode="w", zarr_format=2)
    arr = group.create_array("0", shape=(size, size), chunks=(1024, 1024), dtype=np.uint16,
                             chunk_key_encoding={"name": "v2", "separator": "/"})
    for cy in range(0, size, 1024):  # one chunk (4 x 4 tiles) at a time
        for cx in range(0, size, 1024):
            chunk = np.block([[mosaic_tile(tiles, ty, tx)[0] for tx in range(cx // TILE, cx // TILE + 4)]
                              for ty in range(cy // TILE, cy // TILE + 4)])
            arr[cy:cy + 1024, cx:cx + 1024] = chunk[:min(1024, size - cy), :min(1024, size - cx)]
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "y", "type": "space"},
                                                              {"name": "x", "type": "space"}],
                                   "datasets": [{"path": "0", "coordinateTransformations": [
                                       {"type": "scale", "scale": [1.0, 1.0]}]}]}]
    return paths


def child(args) -> None:
    """One measurement in this process; prints a JSON line."""
    import torch

    torch.set_num_threads(args.threads)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = usage.ru_utime + usage.ru_stime
    t0 = time.perf_counter()
    if args.what == "memory":
        import tifffile

        from napari_nucleiseg import segment

        image = tifffile.imread(args.source)
        nuclei = int(segment(image, model=args.model).labels.max())
        pixels = image.size
    else:
        from napari_nucleiseg.outofcore import segment_out_of_core

        result = segment_out_of_core(args.source, args.out, model=args.model, block=args.block,
                                     workers=args.workers, overwrite=True)
        nuclei, pixels = result.nuclei, int(np.prod(result.labels().shape))
    seconds = time.perf_counter() - t0
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss / 1024  # MiB (Linux: KiB)
    cpu = usage.ru_utime + usage.ru_stime - cpu0  # less sensitive to other jobs on the cores than wall time
    print(json.dumps({"seconds": round(seconds, 1), "s_per_mp": round(seconds / (pixels / 1e6), 3),
                      "cpu_s_per_mp": round(cpu / (pixels / 1e6), 3),
                      "peak_rss_mib": round(peak), "nuclei": nuclei, "megapixels": round(pixels / 1e6, 1)}))


def measure(what: str, source: Path, out: Path, args, workers: int = 1) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--source", str(source), "--out", str(out),
           "--model", args.model, "--block", str(args.block), "--workers", str(workers),
           "--threads", str(max(1, args.threads // workers))]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=10000, help="side of the mosaic")
    p.add_argument("--crop", type=int, default=4000, help="side of the crop compared with segment()")
    p.add_argument("--block", type=int, default=1024)
    p.add_argument("--model", default="default")
    p.add_argument("--threads", type=int, default=2, help="torch threads in all (split between workers)")
    p.add_argument("--folder", default=None, help="where the mosaic and results go (default: a temp folder)")
    p.add_argument("--crop-only", action="store_true",
                   help="only segment() vs out-of-core (1 worker) on the crop, alternately, twice each")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--source", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.what = args.child
        return child(args)
    folder = Path(args.folder or tempfile.mkdtemp(prefix="ooc_bench_"))
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    paths = build(folder, args.size, args.crop, skip_full=args.crop_only)
    full = "" if args.crop_only else f"{args.size}x{args.size} mosaic (BigTIFF + OME-Zarr) and "
    print(f"built {full}{args.crop}x{args.crop} crop in {time.perf_counter() - t0:.0f} s under {folder}")
    crop = f"{args.crop}x{args.crop} TIFF"
    if args.crop_only:
        rows = [(name, crop, measure(what, paths["crop"], folder / f"{what}{k}", args))
                for k in range(2) for name, what in (("in-memory segment()", "memory"), ("out-of-core", "ooc"))]
    else:
        rows = [("in-memory segment()", crop, measure("memory", paths["crop"], folder / "m", args)),
                ("out-of-core, 1 worker", crop, measure("ooc", paths["crop"], folder / "c1", args, 1)),
                ("out-of-core, 2 workers", crop, measure("ooc", paths["crop"], folder / "c2", args, 2)),
                ("out-of-core, 1 worker", f"{args.size}x{args.size} OME-Zarr",
                 measure("ooc", paths["zarr"], folder / "full", args, 1))]
    print(f"\nmodel {args.model}, block {args.block}, {args.threads} torch threads in all\n")
    print("| run | input | s/MP | CPU s/MP | seconds | peak RSS (MiB) | nuclei |\n|---|---|---|---|---|---|---|")
    for name, where, r in rows:
        print(f"| {name} | {where} | {r['s_per_mp']} | {r['cpu_s_per_mp']} | {r['seconds']} | {r['peak_rss_mib']} "
              f"| {r['nuclei']} |")


if __name__ == "__main__":
    main()
