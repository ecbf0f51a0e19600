"""A tiny stand-in for a training script: starts in milliseconds, prints one line per epoch.

loss at epoch e is  x * 0.9**e  (x from --x), so trials with a small x are the good ones.
With TUNELAB_CHECKPOINT_DIR set it saves its epoch after each one and continues from it
when started again (a resumed trial).
"""

import argparse
import os
import sys
import time
from pathlib import Path

parser = argparse.ArgumentParser()
parser.add_argument("--x", type=float, required=True)
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--sleep", type=float, default=0.05)
parser.add_argument("--fail", default="false")
args = parser.parse_args()

print(f"pid {os.getpid()} start", flush=True)
print("warming up", file=sys.stderr, flush=True)
folder = os.environ.get("TUNELAB_CHECKPOINT_DIR")
checkpoint = Path(folder) / "epoch" if folder else None
start = 0
if checkpoint is not None and checkpoint.exists():
    start = int(checkpoint.read_text())
    print(f"resumed from epoch {start}", flush=True)
for epoch in range(start + 1, args.epochs + 1):
    time.sleep(args.sleep)
    loss = args.x * 0.9**epoch
    print(f"epoch {epoch} loss={loss!r} t={time.time()!r}", flush=True)
    if checkpoint is not None:
        checkpoint.write_text(str(epoch))
if args.fail == "true":
    print("boom", file=sys.stderr, flush=True)
    sys.exit(3)
