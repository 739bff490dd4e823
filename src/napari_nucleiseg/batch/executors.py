"""Where images are processed: this process, a process pool, or a Dask cluster; each executor
yields ``(task, row)`` as images finish."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .plan import ImageTask
from .worker import crash_row, error_text, process_image


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


def run_pool(tasks, options, cancel, workers: int, threads: int) -> Iterable[tuple[ImageTask, dict]]:
    """A spawn-context process pool; at most ``2 * workers`` images in flight, so Cancel is quick.

    If a worker dies (killed, out of memory), the images in flight are recorded as errors (a
    later run retries them) and a fresh pool carries on with the rest.
    """
    import multiprocessing as mp

    queue = deque(tasks)
    while queue:
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                   initializer=_init_worker, initargs=(threads,))
        running: dict = {}
        try:
            while queue or running:
                while queue and len(running) < 2 * workers and not (cancel is not None and cancel()):
                    task = queue.popleft()
                    running[pool.submit(process_image, task, options)] = task
                if not running:
                    return
                done, _ = wait(running, timeout=0.2, return_when=FIRST_COMPLETED)
                broken = None
                for fut in done:
                    task = running.pop(fut)
                    try:
                        row = fut.result()
                    except BrokenProcessPool as exc:
                        row, broken = crash_row(task, exc), exc
                    yield task, row
                if broken is not None:
                    for task in list(running.values()):
                        yield task, crash_row(task, broken)
                    running.clear()
                    break
                if cancel is not None and cancel():
                    queue.clear()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def run_dask(tasks, options, cancel, client) -> Iterable[tuple[ImageTask, dict]]:
    """Submit ``process_image`` as Dask tasks on an existing client (``2 * nthreads`` in flight)."""
    from distributed import as_completed

    queue = deque(tasks)
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
        for fut in ac:
            _, task = futures.pop(fut.key)
            try:
                row = fut.result()
            except Exception as exc:  # a worker died, or the task could not run there
                row = {**crash_row(task, exc), "error": f"Dask task failed: {error_text(exc)}"}
            yield task, row
            if cancel is not None and cancel():
                return
            if queue:
                submit(queue.popleft())
    finally:
        if futures:
            client.cancel([f for f, _ in futures.values()])
