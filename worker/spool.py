"""A running trial's reports that could not be delivered, kept in order on local disk.

While the API (or the network to it) is down, the runner appends each metric batch and
log chunk here instead of failing the trial, and delivers them in order once the API
answers again. Both kinds are keyed on the server (points by (name, step), chunks by
offset), so an item delivered twice, when an answer was lost, is stored once.

The file is bounded (TUNELAB_SPOOL_MAX_BYTES, 64 MiB by default): `put` refuses an item
that would pass the bound, and the runner then gives the run up with a message saying so.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import IO, Any

from worker.launch import worker_folder

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def default_spool_dir() -> Path:
    return worker_folder("TUNELAB_SPOOL_DIR", "spool")


def default_max_bytes() -> int:
    return int(os.environ.get("TUNELAB_SPOOL_MAX_BYTES") or DEFAULT_MAX_BYTES)


class Spool:
    """A first-in first-out file of (kind, payload) items: written at its end, read from
    a cursor; emptied (truncated) whenever the cursor reaches the end."""

    def __init__(self, folder: Path, trial_id: int, max_bytes: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"trial-{trial_id}-{uuid.uuid4().hex[:8]}.jsonl"
        self.max_bytes = max_bytes
        self._file: IO[bytes] = open(self.path, "w+b")  # noqa: SIM115 - lives with the spool
        self._read_at = 0
        self._size = 0
        self.items = 0

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self.items

    def put(self, kind: str, payload: dict[str, Any]) -> bool:
        """Appends an item; False (and nothing written) when it would pass the bound."""
        line = json.dumps({"kind": kind, "payload": payload}, allow_nan=True).encode() + b"\n"
        if self._size + len(line) > self.max_bytes:
            return False
        self._file.seek(self._size)
        self._file.write(line)
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
            self._file.truncate(0)
            self._read_at = self._size = 0

    def close(self) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)
