"""Where images are processed: this process, a process pool, or a Dask cluster; each executor
yields ``(task, row)`` as images finish."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ..errors import NucleisegError, SchedulerLostError
from .plan import ImageTask
from .worker import crash_row, error_text, process_image

#: Seconds a Dask run waits for a lost scheduler to come back before it ends.
DASK_LOST_AFTER_S = 30.0


def run_local(tasks, options, cancel, threads: int | None = None) -> Iterable[tuple[ImageTask, dict]]:
    """In this process; ``threads`` (if given) sets torch's thread count for the run only."""
    import torch

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        for task in tasks:
            if cancel is not None and cancel():
                return
            yield task, process_image(task, options, cancel)
    finally:
        torch.set_num_threads(before)


def _init_worker(threads: int) -> None:
    """Process-pool initializer: limit torch threads (the pool shares the cores)."""
    import torch

    torch.set_num_threads(max(1, threads))


def _remove_partials(tasks) -> None:
    """Temporary files the given images' writers left (call only when no worker writes them)."""
    for task in tasks:
        stem = Path(task.out_stem)
        for p in stem.parent.glob(f".{stem.name}_*.part"):
            p.unlink(missing_ok=True)


def _submit_more(pool, running: dict, queue: deque, suspects: deque, options, limit: int, work) -> None:
    """Fill the pool: a suspect (an image in flight when a worker died) runs alone, so that a
    second death names the image that kills workers; otherwise up to ``limit`` images."""
    if suspects:
        if not running:
            task = suspects.popleft()
            running[pool.submit(work, task, options)] = task
        return
    while queue and len(running) < limit:
        task = queue.popleft()
        running[pool.submit(work, task, options)] = task


def run_pool(tasks, options, cancel, workers: int, threads: int, work=process_image
             ) -> Iterable[tuple[ImageTask, dict]]:
    """A spawn-context process pool; at most ``2 * workers`` images in flight, so Cancel is quick.

    If a worker dies (killed, out of memory), the pool is replaced and the images that were in
    flight are retried one at a time: only the image whose worker dies alone is recorded as an
    error (a later run retries it), the others are segmented as usual. Their temporary files are
    removed. ``work`` is the per-image function (``process_image``; a picklable stand-in in tests).
    """
    import multiprocessing as mp

    queue, suspects = deque(tasks), deque()
    while queue or suspects:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads,))
        running: dict = {}
        crashed: list = []
        try:
            while queue or suspects or running:
                if cancel is not None and cancel():
                    queue.clear()
                    suspects.clear()
                _submit_more(pool, running, queue, suspects, options, 2 * workers, work)
                if not running:
                    return
                alone = len(running) == 1
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                broken = None
                for fut in done:
                    task = running.pop(fut)
                    try:
                        row = fut.result()
                    except BrokenProcessPool as exc:
                        crashed.append(task)
                        broken = exc
                        continue
                    yield task, row
                if broken is not None:
                    crashed += list(running.values())
                    running.clear()
                    break
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        _remove_partials(crashed)
        if len(crashed) == 1 and alone:
            yield crashed[0], crash_row(crashed[0], broken)
        else:
            suspects.extend(crashed)


def _check_visible(client, task: ImageTask, timeout: float) -> None:
    """Refuse a run whose Dask workers cannot see the input files (another machine, other mounts)."""
    import os

    try:
        seen = client.submit(os.path.exists, task.source, pure=False).result(timeout=timeout)
    except Exception as exc:  # no worker answered: a lost or empty cluster
        raise SchedulerLostError(f"the Dask cluster did not run a first task within {timeout:g} s "
                                 f"({error_text(exc)}); is the scheduler up and has it workers?") from None
    if not seen:
        raise NucleisegError(f"the Dask workers cannot see {task.source}: they need the input and output "
                             "folders at the same paths as this machine")


def _scheduler_back(client, lost_after: float) -> None:
    """Return once the client is connected to its scheduler; raise SchedulerLostError when it has
    been without one for ``lost_after`` seconds."""
    since = time.monotonic()
    while client.status != "running":
        if time.monotonic() - since > lost_after:
            raise SchedulerLostError(f"lost the connection to the Dask scheduler ({client.status} for "
                                     f"{lost_after:g} s); finished images are kept, run again to resume")
        time.sleep(0.05)


def _scheduler_going(client, exc: Exception, grace: float = 2.0) -> bool:
    """True when ``exc`` is a lost connection and the client loses its scheduler within ``grace``
    seconds (the result of a task can fail that way just before the client notices)."""
    from distributed.comm.core import CommClosedError

    if not isinstance(exc, (CommClosedError, OSError)):
        return False
    since = time.monotonic()
    while time.monotonic() - since < grace:
        if client.status != "running":
            return True
        time.sleep(0.05)
    return False


def _next_done(ac, client, lost_after: float) -> list:
    """The futures finished next (waiting for a lost scheduler at most ``lost_after`` seconds)."""
    while True:
        ready = ac.next_batch(block=False)
        if ready:
            return ready
        _scheduler_back(client, lost_after)
        time.sleep(0.05)


def run_dask(tasks, options, cancel, client, lost_after: float | None = None
             ) -> Iterable[tuple[ImageTask, dict]]:
    """Submit ``process_image`` as Dask tasks on an existing client (``2 * nthreads`` in flight).

    Raises
    ------
    errors.SchedulerLostError
        When the scheduler has been unreachable for ``lost_after`` seconds (default
        ``DASK_LOST_AFTER_S``; the run then ends within that time, its summary written by the caller).
    NucleisegError
        When the workers cannot see the input files.
    """
    from distributed import as_completed

    lost_after = DASK_LOST_AFTER_S if lost_after is None else lost_after
    queue = deque(tasks)
    if queue:
        _check_visible(client, queue[0], lost_after)
    window = max(2, 2 * sum(client.nthreads().values()))
    futures: dict = {}
    ac = as_completed()

    def submit(task):
        fut = client.submit(process_image, task, options, pure=False)
        futures[fut.key] = (fut, task)
        ac.add(fut)

    for _ in range(min(window, len(queue))):
        submit(queue.popleft())
    try:
        while futures:
            for fut in _next_done(ac, client, lost_after):
                _, task = futures.pop(fut.key)
                try:
                    row = fut.result()
                except Exception as exc:  # a worker died, or the task could not run there
                    if _scheduler_going(client, exc):
                        # the scheduler went while the result travelled: the image is not processed
                        _scheduler_back(client, lost_after)
                        submit(task)
                        continue
                    _scheduler_back(client, lost_after)
                    row = {**crash_row(task, exc), "error": f"Dask task failed: {error_text(exc)}"}
                yield task, row
                if cancel is not None and cancel():
                    return
                if queue:
                    submit(queue.popleft())
    finally:
        if futures and client.status == "running":
            client.cancel([f for f, _ in futures.values()])
