"""A lock file that keeps two batch runs from writing into the same output folder at once."""

from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path

from ..errors import FolderInUseError


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class FolderLock:
    """Exclusive, process-level lock held in a file; a lock left by a dead process is taken over.

    Parameters
    ----------
    path : str or Path
        The lock file (created with ``O_EXCL``; its parent folder is created).
    folder : str or Path, optional
        The folder the lock protects, for the error message (default: the lock's parent).

    Raises
    ------
    FolderInUseError
        On entering, when a live process on this host (or any process on another host,
        which cannot be checked) holds the lock.
    """

    def __init__(self, path, folder=None):
        self.path = Path(path)
        self.folder = Path(folder) if folder is not None else self.path.parent
        self._held = False

    def _holder(self) -> dict:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                pid, host = holder.get("pid"), holder.get("host")
                stale = host == me["host"] and isinstance(pid, int) and not _alive(pid)
                if stale or not holder:
                    self.path.unlink(missing_ok=True)
                    continue
                raise FolderInUseError(
                    f"{self.folder} is in use by another batch run (process {pid} on {host}, "
                    f"started {holder.get('started')}); wait for it to finish, or delete "
                    f"{self.path} if that run is gone") from None
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self._held = True
            return
        raise FolderInUseError(f"{self.folder}: could not take the lock {self.path}")

    def release(self) -> None:
        if self._held:
            self.path.unlink(missing_ok=True)
            self._held = False

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
