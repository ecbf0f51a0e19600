"""A member of a population-based training study: a one-number "model" that checkpoints.

Its loss falls each epoch by a factor that depends on how close --lr is to the best
learning rate of that epoch, which decays over time (the optimum moves). It saves its
state (epoch, loss, the trial that first created these weights, and the lr of each epoch)
in TUNELAB_CHECKPOINT_DIR after every epoch (tunelab.save_checkpoint: a temporary file
renamed into place) and loads it when it starts: the minimal change PBT asks of a script.
"""

import argparse
import json
import math
import os
import time

import tunelab

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--epochs", type=int, required=True)
parser.add_argument("--sleep", type=float, default=0.05)
args = parser.parse_args()

path = tunelab.checkpoint_path("state.json")
assert path is not None, "runs as a trial"
state = {"epoch": 0, "loss": 1.0, "origin": os.environ.get("TUNELAB_TRIAL_ID"), "lrs": []}
if path.exists():
    state = json.loads(path.read_text())
    print(f"loaded epoch {state['epoch']} origin {state['origin']}", flush=True)
else:
    print("fresh start", flush=True)


def save() -> None:
    tunelab.save_checkpoint(lambda p: p.write_text(json.dumps(state)), "state.json")


for epoch in range(state["epoch"] + 1, args.epochs + 1):
    time.sleep(args.sleep)
    best = math.log10(0.1) - 0.25 * epoch  # the best lr decays: 0.056 at epoch 1, ...
    gain = 0.5 * math.exp(-((math.log10(args.lr) - best) ** 2))
    state["loss"] = state["loss"] * (1 - gain)
    state["epoch"] = epoch
    state["lrs"].append(args.lr)
    save()
    print(f"epoch {epoch} loss={state['loss']!r}", flush=True)
