"""``segment_out_of_core``: the driver. Plan once, segment the blocks (resuming: finished blocks
are not redone), join the labels chunk by chunk, then the pyramids, the table and the metadata
that mark the result finished."""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..dask_client import dask_client
from ..errors import Cancelled, NucleisegError, OptionError
from ..inference.checks import checked_scale
from ..options import SegmentOptions
from .blocks import DEFAULT_BLOCK, BlockGrid
from .execute import run_tasks
from .plan import make_plan
from .source import SPILL_NAME, ImageSource, describe_source, open_source, spilled
from .stats import ImageStats
from .stitch import join_task, label_offsets
from .store import (
    CANCELLED,
    COMPLETE,
    FAILED,
    LABELS,
    MAPS,
    RUNNING,
    TABLE,
    ResultFolder,
    build_pyramid,
    check_folder,
    create_arrays,
    write_ngff,
)
from .table import write_table
from .worker import BlockJob, process_block, run_block


@dataclass
class OutOfCoreResult:
    """What ``segment_out_of_core`` made.

    Attributes
    ----------
    folder : Path
        The result folder (``store`` describes its files).
    nuclei : int
        Nuclei found (labels run 1..nuclei).
    blocks : int
        Blocks of the grid.
    blocks_run : int
        Blocks segmented by this call (the others were finished by an earlier one).
    settings : dict
        Options and plan (model, post-processing, zoom, block, halo, ...).
    """

    folder: Path
    nuclei: int
    blocks: int
    blocks_run: int
    settings: dict

    @property
    def labels_path(self) -> Path:
        return self.folder / LABELS

    @property
    def table_path(self) -> Path:
        return self.folder / TABLE

    def labels(self, level: int = 0):
        """The labels as a lazy (zarr) array; ``np.asarray`` it for a small image only."""
        import zarr

        return zarr.open_array(str(self.labels_path / str(level)), mode="r")


def segment_out_of_core(
    source,
    out,
    options: SegmentOptions | None = None,
    *,
    block: int = DEFAULT_BLOCK,
    halo: int | str = "auto",
    level: int = 0,
    probability: bool = True,
    uncertainty: bool = True,
    scale: tuple[float, float] | None = None,
    workers: int = 1,
    mode: str = "threads",
    client=None,
    scheduler: str | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
    **changes,
) -> OutOfCoreResult:
    """Segment an image of any size block by block, with memory bounded by the block size.

    Each block is read with a ``halo`` around it and segmented as ``segment()`` segments a whole
    image (same model, post-processing, normalisation and nucleus-size zoom, all chosen once
    for the whole image); a nucleus belongs to the block holding its centroid, so none is cut at
    a seam or counted twice. Labels (and the maps) go to OME-Zarr in ``out`` as blocks finish;
    a run killed or cancelled resumes with the blocks it had not finished.

    Parameters
    ----------
    source : str, Path, array-like or ImageSource
        A TIFF/BigTIFF file, a zarr / OME-Zarr folder, or a dask/zarr array (``source.open_source``).
    out : str or Path
        Result folder (created; an earlier run's folder is resumed).
    options : SegmentOptions, optional
        As for ``segment()``; ``**changes`` are applied over it.
    block : int
        Side of a block (and of an output chunk), pixels.
    halo : int or "auto"
        Context read around each block; "auto": twice the nucleus diameter and at least the
        network's margin for the image's kind (``plan.needed_halo``), at most a block.
    level : int
        Pyramid level of a multiscale source to segment.
    probability, uncertainty : bool
        Also write these maps.
    scale : (float, float), optional
        Pixel size (``area_physical`` in the table, and the OME-Zarr scale).
    workers : int
        Blocks segmented at once on this machine (``mode`` threads or spawned processes).
    mode : str
        ``"threads"`` or ``"processes"``.
    client : dask.distributed.Client, optional
        Run the blocks on this Dask cluster (its workers must see ``source`` and ``out`` at the
        same paths).
    scheduler : str, optional
        Address of a Dask scheduler; a client is opened for the run and closed after.
    overwrite : bool
        Replace a result folder of another image or other options (else that is an error).
    progress : callable, optional
        ``progress(done, total)``: blocks segmented, then chunks joined (total = 2 x blocks).
    cancel : callable, optional
        Returns True to stop after the blocks in flight; ``errors.Cancelled`` is raised.

    Returns
    -------
    OutOfCoreResult

    Raises
    ------
    NucleisegError
        A bad source (unreadable, truncated, not one 2D image), an output folder that holds
        something else, an unknown model; ``errors.OptionError`` for an instance model (a
        detector), which segments in memory only.
    """
    from .. import zoo

    opts = SegmentOptions.build(options, **changes).segment_options()
    check_block(block, halo)
    # plain numbers: the identity is compared with the one stored as JSON when a run resumes
    block, halo, level = int(block), (halo if halo == "auto" else int(halo)), int(level)
    scale = checked_scale(scale)  # as segment() takes it: (y, x) sizes above 0
    src = open_source(source, level=level, channel=opts.channel)
    try:
        entry = zoo.get_entry(opts.model)
    except (KeyError, FileNotFoundError) as exc:
        raise NucleisegError(str(exc.args[0] if exc.args else exc)) from None
    if entry.outputs_instances:
        raise OptionError(f"model {entry.name!r} is a detector (it outputs instances, not maps): out-of-core "
                          "segmentation joins blocks of maps and cannot take it; use a map model such as "
                          f"{zoo.default_model_name()!r}, or segment the image in memory")
    maps = tuple(m for m, on in (("probability", probability), ("uncertainty", uncertainty)) if on)
    identity = {"source": describe_source(src),
                "options": {**dataclasses.asdict(opts), "model": entry.name, "block": int(block), "halo": halo,
                            "level": level, "maps": list(maps), "scale": list(scale) if scale else None}}
    folder = ResultFolder(Path(out).absolute())  # workers of a Dask cluster run in other directories
    run = check_folder(folder, identity, overwrite)
    if run is not None and run.get("status") == COMPLETE:
        return _result(folder, run, 0)
    if run is None:
        folder.root.mkdir(parents=True, exist_ok=True)
        run = {"identity": identity, "status": RUNNING, "started": _now()}
        folder.write_run(run)  # a folder being planned is recognised (and resumed) as ours
    samples = {}
    if "plan" not in run:
        with _recorded(folder, run):
            run["plan"], samples = make_plan(src, opts, entry, block, halo, cancel)
        folder.write_run(run)
    job = _job(src, opts, entry, run["plan"], folder, maps, scale)
    with dask_client(client, scheduler) as dask:
        with _shareable(job, folder, dask is not None or (mode == "processes" and int(workers) > 1)) as job:
            return _execute(folder, run, job, workers, mode, dask, progress, cancel, samples)


@contextlib.contextmanager
def _shareable(job: BlockJob, folder: ResultFolder, other_processes: bool):
    """``job`` with a source that block tasks sent to ``other_processes`` carry by file name
    (``source.spilled``); the spilled copy is removed afterwards."""
    if not other_processes:
        yield job
        return
    src = spilled(job.source, folder.root)
    try:
        yield dataclasses.replace(job, source=src)
    finally:
        if src is not job.source:
            (folder.root / SPILL_NAME).unlink(missing_ok=True)


def check_block(block, halo) -> None:
    """``block`` and ``halo`` refused before any file is written (``BlockGrid`` would refuse them
    only once the run had begun)."""
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 16:
        raise OptionError(f"block must be a whole number of at least 16 pixels, not {block!r}")
    if halo != "auto" and (isinstance(halo, bool) or not isinstance(halo, (int, np.integer))
                           or not 0 <= halo <= block):
        raise OptionError(f"halo must be 'auto' or a whole number from 0 to the block size ({block}), not {halo!r}")


def _job(src: ImageSource, opts: SegmentOptions, entry, plan: dict, folder: ResultFolder, maps, scale) -> BlockJob:
    grid = BlockGrid(src.shape[:2], plan["block"], plan["halo"])
    stats = ImageStats.from_dict(plan["stats"])
    # the plan's post-processing (a plan of an older version has none): a resumed run keeps it
    post = plan.get("postprocess") or opts.postprocess(entry.postprocess(stats.kind), entry.postprocess())
    return BlockJob(src, grid, stats, plan["weights"], opts.device, opts.tta,
                    opts.tile, opts.overlap, post, float(plan["zoom"]),
                    str(folder.root), maps, tuple(scale) if scale else None)


def _execute(folder: ResultFolder, run: dict, job: BlockJob, workers: int, mode: str, client, progress, cancel,
             samples: dict):
    """Segment the blocks not done yet (first the plan's sample blocks, segmented already), join
    the chunks not joined yet, finish; record how it ended in ``run.json``."""
    grid, t0 = job.grid, time.perf_counter()
    total = 2 * len(grid)
    counter = {"done": 0}

    def step(_result=None):
        counter["done"] += 1
        if progress is not None:
            progress(counter["done"], total)

    with _recorded(folder, run):
        create_arrays(folder, grid.shape, grid.block, job.maps)
        reused = len(samples)
        while samples:
            key, window = samples.popitem()
            process_block(job, grid.at(*map(int, key.split("_"))), window)
        finished = folder.done_blocks()
        todo = [(job, b.iy, b.ix) for b in grid if b.key not in finished]
        counter["done"] = len(grid) - len(todo)
        run_tasks(run_block, todo, step, workers=workers, mode=mode, client=client, cancel=cancel)
        nuclei = _block_nuclei(folder, grid)
        offsets = label_offsets(grid, nuclei)
        joins = [(str(folder.root), grid, b.iy, b.ix, {n.key: offsets[n.key] for n in grid.neighbourhood(b)})
                 for b in grid if not folder.joined_file(b.key).exists()]
        counter["done"] = total - len(joins)
        run_tasks(join_task, joins, step, workers=workers, mode=mode, client=client, cancel=cancel)
        _finish(folder, run, job, nuclei, cancel)
    run.update(status=COMPLETE, finished=_now(), seconds=round(time.perf_counter() - t0, 2))
    folder.write_run(run)
    return _result(folder, run, reused + len(todo))


@contextlib.contextmanager
def _recorded(folder: ResultFolder, run: dict):
    """Record in ``run.json`` how the work inside stopped: cancelled (resumable), or failed and why."""
    try:
        yield
    except Cancelled:
        folder.write_run({**run, "status": CANCELLED})
        raise
    except BaseException as exc:
        message = str(exc) if isinstance(exc, NucleisegError) else f"{type(exc).__name__}: {exc}"
        folder.write_run({**run, "status": FAILED, "error": message})
        raise


def _block_nuclei(folder: ResultFolder, grid: BlockGrid) -> dict[str, int]:
    nuclei = {}
    for b in grid:
        with np.load(folder.block_file(b.key)) as data:
            nuclei[b.key] = int(data["nuclei"])
    return nuclei


def _finish(folder: ResultFolder, run: dict, job: BlockJob, nuclei: dict[str, int], cancel) -> None:
    """Pyramids, the nuclei table, then the OME-NGFF metadata: the result becomes readable."""
    total = sum(nuclei.values())
    extra = {"source": job.source.name, "model": job.weights, "zoom": job.zoom, "block": job.grid.block,
             "halo": job.grid.halo, "nuclei": total}
    images = [(LABELS, True)] + [(MAPS[m], False) for m in job.maps]
    levels = {name: build_pyramid(folder, name, job.grid.block, label, cancel) for name, label in images}
    write_table(folder, job.grid, nuclei, job.scale is not None)
    for name, label in images:
        write_ngff(folder, name, levels[name], job.scale, label, extra)
    run["nuclei"] = total


def _result(folder: ResultFolder, run: dict, blocks_run: int) -> OutOfCoreResult:
    plan = run["plan"]
    grid_blocks = len(BlockGrid(tuple(run["identity"]["source"]["shape"][:2]), plan["block"], plan["halo"]))
    settings = {**run["identity"]["options"], **{k: v for k, v in plan.items() if k not in ("stats", "postprocess")},
                **plan.get("postprocess", {}),  # the post-processing used, as segment()'s settings give it
                "image_kind": plan["stats"]["kind"], "smoothing": plan["stats"].get("smoothing", 0.0),
                "evened": ImageStats.from_dict(plan["stats"]).light.strength}
    return OutOfCoreResult(folder.root, int(run.get("nuclei", 0)), grid_blocks, blocks_run, settings)


def _now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds")
