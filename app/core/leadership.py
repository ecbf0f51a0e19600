"""Which of the API processes on one machine runs the work that must run once.

`tunelab serve --workers N` starts N processes on one database. Each serves requests, but
only one may start trials (the in-process executor or the Celery dispatcher, which keep
their own slot counts), sweep for lost heartbeats and seed the demo. The first process
to lock a file named after the database holds it until it exits; the others try again
every few seconds, so that one of them takes over when the holder dies.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows serves one process, always the leader
    fcntl = None  # type: ignore[assignment]

# How often a process without the lock tries again.
RETRY_S = 2.0


def lock_path(data_dir: Path, database_url: str) -> Path:
    """One lock per database: servers of different databases never wait on each other."""
    digest = hashlib.sha1(database_url.encode()).hexdigest()[:12]
    return data_dir / f"serve-{digest}.lock"


class Leadership:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Takes the lock if no other process (or Leadership) holds it; never waits."""
        if self._fd is not None:
            return True
        if fcntl is None:  # pragma: no cover
            self._fd = -1
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None and fd >= 0:
            os.close(fd)  # closing the only descriptor drops the lock
