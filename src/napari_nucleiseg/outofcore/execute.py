"""Where the blocks run: this process, a thread or process pool, or a Dask cluster.

``run_tasks`` submits ``fn(*args)`` for each argument tuple with a bounded number in flight
(memory stays that of a few blocks, and Cancel is quick) and calls ``on_done(result)`` in this
process as each one finishes. The first error stops the run and is raised here.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, ThreadPoolExecutor, wait

from ..errors import Cancelled, NucleisegError, SchedulerLostError, StopsRun

MODES = ("threads", "processes")


def run_tasks(fn: Callable, argsets: Iterable[tuple], on_done: Callable, *, workers: int = 1,
              mode: str = "threads", client=None, cancel: Callable[[], bool] | None = None) -> None:
    """Run ``fn(*args)`` for every ``args`` of ``argsets``.

    Parameters
    ----------
    fn : callable
        A module-level function (it is pickled for processes and Dask) taking a ``cancel``
        keyword, which it is given when it runs in this process (serial or threads).
    argsets : iterable of tuple
    on_done : callable
        ``on_done(result)`` in this process, as tasks finish (in any order).
    workers : int
        Threads or processes; 1 runs in this process, one task at a time.
    mode : str
        ``"threads"`` or ``"processes"`` (spawned, each loading the model once).
    client : dask.distributed.Client, optional
        Run the tasks on this Dask cluster instead.
    cancel : callable, optional
        Checked between tasks; ``errors.Cancelled`` is raised once the tasks in flight are done.
    """
    if mode not in MODES:
        raise NucleisegError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    queue = deque(argsets)
    if client is not None:
        return _run_dask(fn, queue, on_done, client, cancel)
    if workers <= 1:
        for args in queue:
            _check(cancel)
            on_done(fn(*args, cancel=cancel))
        return None
    import multiprocessing as mp

    import torch

    share = max(1, (os.cpu_count() or 1) // workers)
    before = torch.get_num_threads()
    if mode == "threads":  # the threads share torch's pool: size it so they do not oversubscribe
        torch.set_num_threads(min(before, share))
    pool = (ThreadPoolExecutor(workers) if mode == "threads" else
            ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_limit_threads,
                                initargs=(share,)))
    running: set = set()
    try:
        while queue or running:
            while queue and len(running) < 2 * workers and not _stopped(cancel):
                running.add(pool.submit(_call, fn, queue.popleft(), cancel if mode == "threads" else None))
            if not running:
                break
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                on_done(fut.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(before)
    _check(cancel)
    return None


def _run_dask(fn, queue: deque, on_done, client, cancel) -> None:
    from distributed import as_completed

    window = max(2, 2 * sum(client.nthreads().values()))
    ac = as_completed()
    pending = []

    def submit():
        fut = client.submit(_call, fn, queue.popleft(), pure=False)
        pending.append(fut)
        ac.add(fut)

    for _ in range(min(window, len(queue))):
        submit()
    try:
        for fut in ac:
            pending.remove(fut)
            on_done(_result(fut))
            if queue and not _stopped(cancel):
                submit()
    finally:
        if pending and client.status == "running":
            client.cancel(pending)
    _check(cancel)


def _result(fut):
    """A block task's result; a task cancelled because the scheduler went away is one
    ``SchedulerLostError`` (the finished blocks are kept: a run again resumes)."""
    from concurrent.futures import CancelledError

    from distributed.comm.core import CommClosedError

    try:
        return fut.result()
    except (CancelledError, CommClosedError) as exc:
        raise SchedulerLostError(f"lost the Dask scheduler ({type(exc).__name__}: {exc}); finished blocks are "
                                 "kept, run again to resume") from None


def _call(fn, args, cancel=None):
    """``fn(*args)``; our errors come back as plain ``NucleisegError``, or ``StopsRun`` for one that
    stops a batch (every subclass pickles so)."""
    try:
        return fn(*args, cancel=cancel)
    except NucleisegError as exc:
        raise (StopsRun if isinstance(exc, StopsRun) else NucleisegError)(str(exc)) from None


def _limit_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _stopped(cancel) -> bool:
    return cancel is not None and bool(cancel())


def _check(cancel) -> None:
    if _stopped(cancel):
        raise Cancelled()
