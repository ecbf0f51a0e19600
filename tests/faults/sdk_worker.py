"""A worker process for the fault tests: runs trials of one study and appends every point
and completion the server acknowledged to a JSON-lines file (read back by the test)."""

from __future__ import annotations

import json
import sys
from typing import Any

from tests.faults.harness import Ledger, run_client


class FileLedger(Ledger):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.handle = open(path, "a", buffering=1)  # noqa: SIM115

    def add_points(self, trial_id: int, batch: list[dict[str, Any]]) -> None:
        for p in batch:
            self.handle.write(
                json.dumps({"trial": trial_id, "name": p["name"], "step": p["step"]}) + "\n"
            )


def main() -> None:
    api, study_id, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ledger = FileLedger(path)
    run_client(api, study_id, ledger, steps=8, pause_s=0.25)
    for error in ledger.errors:
        print(error, file=sys.stderr)
    sys.exit(1 if ledger.errors else 0)


if __name__ == "__main__":
    main()
