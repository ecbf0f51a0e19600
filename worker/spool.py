"""A running trial's reports that could not be delivered, kept in order on local disk.

While the API (or the network to it, or its database) is down, the runner appends each
metric batch and log chunk here instead of failing the trial, and delivers them in order
once the API answers again. Both kinds are keyed on the server (points by (name, step),
chunks by offset), so an item delivered twice, when an answer was lost, is stored once.

The file is bounded (TUNELAB_SPOOL_MAX_BYTES, 64 MiB by default): `put` refuses an item
that would pass the bound, and the runner then gives the run up with a message saying so.

A spool outlives its worker process: its first line names the trial, the run's attempt
and the API, and a runner holds an exclusive lock (flock) on the file while it uses it.
A file left with undelivered items (the worker was stopped or killed during an outage)
is found by the next worker process on this host at its start (`leftovers`), which
delivers it (worker/delivery.deliver_leftovers). Items already delivered before the end
are sent again and stored once.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from worker.launch import worker_folder

DEFAULT_MAX_BYTES = 64 * 1024 * 1024

log = logging.getLogger("tunelab.runner")


def default_spool_dir() -> Path:
    return worker_folder("TUNELAB_SPOOL_DIR", "spool")


def default_max_bytes() -> int:
    return int(os.environ.get("TUNELAB_SPOOL_MAX_BYTES") or DEFAULT_MAX_BYTES)


class Spool:
    """A first-in first-out file of (kind, payload) items after a header line: written at
    its end, read from a cursor; emptied (cut back to the header) whenever the cursor
    reaches the end."""

    def __init__(
        self,
        folder: Path,
        trial_id: int,
        max_bytes: int,
        attempt: int | None = None,
        api_url: str | None = None,
    ) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"trial-{trial_id}-{uuid.uuid4().hex[:8]}.jsonl"
        self.max_bytes = max_bytes
        self._file: IO[bytes] = open(self.path, "w+b")  # noqa: SIM115 - lives with the spool
        # Held until the file is closed (or the process ends): a worker starting meanwhile
        # on this host leaves the file to this runner.
        fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        header = {"trial_id": trial_id, "attempt": attempt, "api_url": api_url}
        self._file.write(json.dumps({"spool": header}).encode() + b"\n")
        self._file.flush()
        self._start = self._file.tell()
        self._read_at = self._size = self._start
        self.items = 0

    @property
    def size(self) -> int:
        return self._size - self._start

    def __len__(self) -> int:
        return self.items

    def put(self, kind: str, payload: dict[str, Any]) -> bool:
        """Appends an item; False (and nothing written) when it would pass the bound."""
        line = json.dumps({"kind": kind, "payload": payload}, allow_nan=True).encode() + b"\n"
        if self.size + len(line) > self.max_bytes:
            return False
        self._file.seek(self._size)
        self._file.write(line)
        # To the operating system at once: a worker process killed now leaves it on disk.
        self._file.flush()
        self._size += len(line)
        self.items += 1
        return True

    def peek(self) -> tuple[str, dict[str, Any]] | None:
        """The oldest item not delivered yet."""
        if self.items == 0:
            return None
        self._file.seek(self._read_at)
        item = json.loads(self._file.readline())
        return str(item["kind"]), dict(item["payload"])

    def pop(self) -> None:
        """Drops the oldest item: it was delivered."""
        if self.items == 0:
            return
        self._file.seek(self._read_at)
        self._read_at += len(self._file.readline())
        self.items -= 1
        if self.items == 0:
            self._file.truncate(self._start)
            self._read_at = self._size = self._start

    def close(self) -> None:
        """Ends the runner's use. A spool still holding items stays on disk for the next
        worker process (`leftovers`); an empty one is removed."""
        if self.items:
            log.warning(
                "%d undelivered reports stay in %s; the next worker started on this host "
                "delivers them",
                self.items,
                self.path,
            )
            # Only what was not delivered: the next process need not send the rest again.
            self._file.seek(self._read_at)
            rest = self._file.read()
            self._file.truncate(self._start)
            self._file.seek(self._start)
            self._file.write(rest)
            self._file.flush()
            self._file.close()
            return
        self._file.close()
        self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Ends the runner's use and forgets the items (the run was superseded)."""
        self._file.close()
        self.path.unlink(missing_ok=True)


@dataclass
class Leftover:
    """A spool file a runner of an earlier worker process did not deliver."""

    path: Path
    trial_id: int
    attempt: int | None
    api_url: str | None
    items: list[tuple[str, dict[str, Any]]]
    file: IO[bytes]

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        self.file.close()

    def release(self) -> None:
        self.file.close()


def leftovers(folder: Path) -> Iterator[Leftover]:
    """The spool files in `folder` no live runner holds, oldest first, each locked while
    the caller has it (release or remove it). A line cut short by a kill ends a file."""
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("trial-*.jsonl"), key=lambda p: p.stat().st_mtime):
        try:
            file = open(path, "r+b")  # noqa: SIM115 - handed to the caller
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a runner of a live process uses it
            file.close()
            continue
        lines = file.read().split(b"\n")
        try:
            header = json.loads(lines[0])["spool"]
        except (ValueError, KeyError, TypeError):
            log.warning("%s is not a spool file; left alone", path)
            file.close()
            continue
        items: list[tuple[str, dict[str, Any]]] = []
        for line in lines[1:]:
            try:
                item = json.loads(line)
            except ValueError:
                break
            items.append((str(item["kind"]), dict(item["payload"])))
        yield Leftover(
            path, int(header["trial_id"]), header.get("attempt"), header.get("api_url"), items, file
        )
