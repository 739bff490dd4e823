"""The Dask client of a run: the caller's, or one opened on a scheduler address for the run."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def dask_client(client, scheduler: str | None):
    """The given Dask client, or one opened on ``scheduler`` and closed at the end, or None."""
    if client is not None or not scheduler:
        yield client
        return
    from distributed import Client

    own = Client(scheduler)
    try:
        yield own
    finally:
        own.close()
