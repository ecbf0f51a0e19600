"""A training script for the dashboard's end-to-end test: accuracy, latency and memory
from its hyperparameters, printed as log lines the study's metric definitions parse.
`--momentum` is optional: it is only passed when the optimizer is sgd."""

from __future__ import annotations

import argparse
import math
import time

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, required=True)
parser.add_argument("--optimizer", required=True)
parser.add_argument("--momentum", type=float, default=None)
args = parser.parse_args()
if args.optimizer == "sgd" and args.momentum is None:
    raise SystemExit("sgd needs --momentum")
if args.optimizer != "sgd" and args.momentum is not None:
    raise SystemExit("--momentum is for sgd only")

distance = abs(math.log10(args.lr) + 3)
acc = 0.95 - 0.05 * distance - (0.0 if args.optimizer == "adam" else 0.03)
latency = 10 + 40 * args.lr * 10 + (5 if args.optimizer == "adam" else 0) + distance
memory = 20 + (8 if args.optimizer == "adam" and args.lr > 0.01 else 0)
for step in (1, 2):
    time.sleep(0.05)
    print(f"step {step} acc={acc * step / 2:.5f}", flush=True)
print(f"step 2 latency_ms={latency:.4f}", flush=True)
print(f"step 2 memory_gib={memory:.3f}", flush=True)
