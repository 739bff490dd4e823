"""A lock that keeps two batch runs from writing into the same output folder at once.

The lock itself is ``filelock``'s: an operating-system lock on the file, which no two processes
can hold at once and which the system releases when its process dies (nothing is ever stale).
Beside it, a small JSON file says who holds it, for the message a second run gets.
"""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from filelock import FileLock, Timeout

from ..errors import FolderInUseError, OutputWriteError


class FolderLock:
    """Exclusive, process-level lock held in a file.

    Parameters
    ----------
    path : str or Path
        The lock file (its parent folder is created); who holds it is written to
        ``<path>.holder`` (JSON).
    folder : str or Path, optional
        The folder the lock protects, for the error message (default: the lock's parent).

    Raises
    ------
    FolderInUseError
        On entering, when another process (or another ``FolderLock`` of this one) holds the lock.
    OutputWriteError
        When the lock file cannot be created (a read-only or full folder).
    """

    def __init__(self, path, folder=None):
        self.path = Path(path)
        self.folder = Path(folder) if folder is not None else self.path.parent
        self.holder_path = self.path.with_name(self.path.name + ".holder")
        self._lock: FileLock | None = None

    def _holder(self) -> dict:
        try:
            holder = json.loads(self.holder_path.read_text())
        except (OSError, ValueError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def acquire(self) -> None:
        # is_singleton=False, thread_local=False: a second FolderLock of this very process is refused too
        lock = FileLock(self.path, timeout=0, is_singleton=False, thread_local=False)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock.acquire()
        except Timeout:
            h = self._holder()
            who = (f" (process {h.get('pid')} on {h.get('host')}, started {h.get('started')})" if h else "")
            raise FolderInUseError(f"{self.folder} is in use by another batch run{who}; wait for it to "
                                   "finish, or choose another output folder") from None
        except OSError as exc:  # a read-only or full output folder (Timeout is an OSError too)
            raise OutputWriteError(self.folder, exc) from None
        self._lock = lock
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        try:
            self.holder_path.write_text(json.dumps(me))
        except OSError:
            pass  # only the message of a second run would miss it

    def release(self) -> None:
        if self._lock is not None:
            self.holder_path.unlink(missing_ok=True)
            self._lock.release()
            self._lock = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
