"""The result folder of an out-of-core run: OME-Zarr images written as the blocks finish, the
per-block done markers, and ``run.json``, which says what the folder holds and whether it is
finished.

::

    OUT/
      run.json            source, options, plan, status ("running", "cancelled", "failed", "complete")
      labels.zarr         int32 nuclei labels (OME-NGFF 0.4 multiscales + image-label)
      probability.zarr    float32 foreground probability (optional)
      uncertainty.zarr    float32 per-pixel uncertainty (optional)
      nuclei.csv          one row per nucleus (written last)
      .state/blocks/      one ``IY_IX.npz`` per segmented block: its done marker
      .state/joined/      one empty ``IY_IX`` per labels chunk written

Nothing in it looks finished before the end: the OME-NGFF metadata that lets a reader open the
images, ``nuclei.csv`` and ``status: complete`` are written only when every block is done.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from ..errors import NucleisegError
from ..io.writers import _atomic_write, atomic_write_text

RUN_FILE = "run.json"
LABELS = "labels.zarr"
MAPS = {"probability": "probability.zarr", "uncertainty": "uncertainty.zarr"}
TABLE = "nuclei.csv"
STATE = ".state"
RUNNING, CANCELLED, FAILED, COMPLETE = "running", "cancelled", "failed", "complete"


class ResultFolder:
    """Paths and files of one result folder ``root``."""

    def __init__(self, root):
        self.root = Path(root)

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE

    def block_file(self, key: str) -> Path:
        """The done marker (and stitching pieces and table) of block ``key``."""
        return self.root / STATE / "blocks" / f"{key}.npz"

    def joined_file(self, key: str) -> Path:
        return self.root / STATE / "joined" / key

    def read_run(self) -> dict | None:
        """``run.json``, or None if there is none."""
        try:
            return json.loads(self.run_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise NucleisegError(f"{self.run_file}: unreadable ({exc}); remove the folder to start again") from None

    def write_run(self, run: dict) -> None:
        atomic_write_text(self.run_file, json.dumps(run, indent=1, default=str))

    def done_blocks(self) -> set[str]:
        """Keys of the blocks whose done marker exists."""
        folder = self.root / STATE / "blocks"
        return {p.stem for p in folder.glob("*.npz")} if folder.is_dir() else set()

    def reset(self) -> None:
        """Remove everything a run wrote here (the folder itself stays)."""
        for name in (RUN_FILE, LABELS, *MAPS.values(), TABLE, STATE):
            path = self.root / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()


def check_folder(folder: ResultFolder, identity: dict, overwrite: bool) -> dict | None:
    """The earlier run of ``folder`` to resume (None: start afresh).

    Raises NucleisegError when the folder holds something else: files that are not a result,
    or the result of another image or of other options (unless ``overwrite``). A run that failed
    while it was being planned holds no result, and is replaced.
    """
    root = folder.root
    if root.exists() and not root.is_dir():
        raise NucleisegError(f"{root}: exists and is not a folder")
    run = folder.read_run() if root.is_dir() else None
    if run is None:
        if root.is_dir() and any(root.iterdir()):
            raise NucleisegError(f"{root}: exists and is not an out-of-core result (no {RUN_FILE}); "
                                 "choose a new or empty folder")
        return None
    if run.get("identity") == identity:
        return run
    if overwrite or (run.get("status") == FAILED and "plan" not in run):  # failed before any block: empty
        folder.reset()
        return None
    theirs, ours = run.get("identity", {}), identity
    what = ("another image (" + str(theirs.get("source", {}).get("name")) + ")"
            if theirs.get("source") != ours["source"] else "other options ("
            + ", ".join(sorted(k for k in set(theirs.get("options", {})) | set(ours["options"])
                               if theirs.get("options", {}).get(k) != ours["options"].get(k))) + ")")
    raise NucleisegError(f"{root}: holds the result of {what}; choose another folder, or overwrite it")


def create_arrays(folder: ResultFolder, shape: tuple[int, int], chunk: int, maps: tuple[str, ...]) -> None:
    """Level 0 of every output image (empty, zarr format 2), unless it exists (a resumed run)."""
    for name, dtype in [(LABELS, "int32")] + [(MAPS[m], "float32") for m in maps]:
        path = folder.root / name
        if (path / "0" / ".zarray").exists():
            continue
        _create(path, "0", shape, chunk, dtype)


def _create(path: Path, key: str, shape, chunk: int, dtype):
    import numcodecs
    import zarr

    group = zarr.open_group(str(path), mode="a", zarr_format=2)
    return group.create_array(key, shape=tuple(shape), chunks=(chunk, chunk), dtype=dtype, fill_value=0,
                              compressors=numcodecs.Blosc(cname="zstd", clevel=3,
                                                          shuffle=numcodecs.Blosc.BITSHUFFLE),
                              chunk_key_encoding={"name": "v2", "separator": "/"}, overwrite=True)


def open_level(folder: ResultFolder, name: str, level: int = 0, mode: str = "r+"):
    import zarr

    return zarr.open_array(str(folder.root / name / str(level)), mode=mode)


def save_block(folder: ResultFolder, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Write a block's result (its done marker) atomically."""
    _atomic_write(folder.block_file(key), lambda tmp: _savez(tmp, arrays))


def _savez(tmp: str, arrays: dict) -> None:
    with open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def build_pyramid(folder: ResultFolder, name: str, chunk: int, labels: bool, cancel=None) -> int:
    """Levels 1, 2, ... of ``name``, each half the size of the one before (labels: every other
    pixel; maps: 2x2 means), until one chunk holds a level; returns the number of levels."""
    from ..errors import Cancelled

    level, prev = 0, open_level(folder, name, 0, "r")
    while max(prev.shape) > chunk:
        shape = (-(-prev.shape[0] // 2), -(-prev.shape[1] // 2))
        nxt = _create(folder.root / name, str(level + 1), shape, chunk, prev.dtype)
        for y0 in range(0, shape[0], chunk):
            for x0 in range(0, shape[1], chunk):
                if cancel is not None and cancel():
                    raise Cancelled()
                src = prev[2 * y0:2 * (y0 + chunk), 2 * x0:2 * (x0 + chunk)]
                nxt[y0:y0 + chunk, x0:x0 + chunk] = src[::2, ::2] if labels else _mean2(src)
        level, prev = level + 1, nxt
    return level + 1


def _mean2(a: np.ndarray) -> np.ndarray:
    """2x2 means (a last odd row or column is averaged with itself)."""
    a = np.pad(a, ((0, a.shape[0] % 2), (0, a.shape[1] % 2)), mode="edge")
    return a.reshape(a.shape[0] // 2, 2, a.shape[1] // 2, 2).mean(axis=(1, 3)).astype(a.dtype)


def write_ngff(folder: ResultFolder, name: str, levels: int, scale: tuple[float, float] | None,
               label: bool, extra: dict) -> None:
    """OME-NGFF 0.4 metadata of a finished image: multiscales (and image-label for labels)."""
    import zarr

    sy, sx = scale or (1.0, 1.0)
    unit = {"unit": "micrometer"} if scale else {}
    datasets = [{"path": str(k), "coordinateTransformations": [{"type": "scale",
                                                                "scale": [sy * 2 ** k, sx * 2 ** k]}]}
                for k in range(levels)]
    attrs = {"multiscales": [{"version": "0.4", "name": name.removesuffix(".zarr"),
                              "axes": [{"name": "y", "type": "space", **unit}, {"name": "x", "type": "space", **unit}],
                              "datasets": datasets,
                              "type": "nearest" if label else "mean"}],
             "nucleiseg": extra}
    if label:
        attrs["image-label"] = {"version": "0.4", "source": {"image": extra.get("source", "")}}
    group = zarr.open_group(str(folder.root / name), mode="a", zarr_format=2)
    group.attrs.update(attrs)
