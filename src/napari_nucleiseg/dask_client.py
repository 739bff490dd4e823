"""The Dask client of a run: the caller's, or one opened on a scheduler address for the run."""

from __future__ import annotations

import contextlib

from .errors import SchedulerLostError

#: seconds to wait for a scheduler to answer when opening a client on its address
CONNECT_TIMEOUT_S = 30.0


@contextlib.contextmanager
def dask_client(client, scheduler: str | None, timeout: float = CONNECT_TIMEOUT_S):
    """The given Dask client, or one opened on ``scheduler`` and closed at the end, or None.

    A scheduler that cannot be reached within ``timeout`` seconds is one ``SchedulerLostError``;
    the client opened here keeps its own reconnect tracebacks from the terminal
    (``quiet_dask_logging``).
    """
    if client is not None or not scheduler:
        yield client
        return
    from distributed import Client

    scheduler = checked_address(scheduler)
    with quiet_dask_logging():
        try:
            own = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            why = str(exc) or type(exc).__name__
            raise SchedulerLostError(f"cannot reach the Dask scheduler at {scheduler} ({why})") from None
        try:
            yield own
        finally:
            own.close()


def checked_address(scheduler) -> str:
    """The scheduler address, refused in one line when it is malformed (before a client is built:
    a half-built one complains again when Python exits)."""
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import backends

    address = str(scheduler).strip()
    try:
        if not address:
            raise ValueError("empty")
        scheme, location = parse_address(address)
        if scheme not in backends:
            raise ValueError(f"unknown protocol {scheme!r}")
        if scheme in ("tcp", "tls"):
            parse_host_port(location)
    except ValueError as exc:
        raise SchedulerLostError(f"{address!r} is not a Dask scheduler address such as tcp://host:8786 "
                                 f"({exc})") from None
    return address


@contextlib.contextmanager
def quiet_dask_logging():
    """Keep the client's own logging (tracebacks while it tries to reconnect to a lost scheduler)
    from the user's terminal: a lost scheduler is reported once, as ``SchedulerLostError``."""
    import logging

    loggers = [logging.getLogger(n) for n in ("distributed.client", "distributed.comm", "distributed.core",
                                              "distributed.utils", "distributed.batched")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
