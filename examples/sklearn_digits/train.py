"""Trains a small neural network on scikit-learn's digits and prints one line per epoch.

It knows nothing of Tunelab: hyperparameters come as flags, metrics leave as printed
lines that the study's regexes read. On SIGTERM (a pause or a stop) it saves a
checkpoint into $TUNELAB_CHECKPOINT_DIR, if set, and continues from it when run again.

    python examples/sklearn_digits/train.py --lr 0.01 --alpha 1e-4 --hidden 64 --epochs 20
"""

from __future__ import annotations

import argparse
import os
import pickle
import signal
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty")
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--epoch_seconds", type=float, default=0.0, help="sleep per epoch, for demos"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)
    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=args.seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    classes = np.unique(y)

    folder = os.environ.get("TUNELAB_CHECKPOINT_DIR")
    checkpoint = Path(folder) / "model.pkl" if folder else None
    if checkpoint is not None and checkpoint.exists():
        model, start = pickle.loads(checkpoint.read_bytes())
        print(f"resumed from epoch {start}", flush=True)
    else:
        model = MLPClassifier(
            hidden_layer_sizes=(args.hidden,),
            learning_rate_init=args.lr,
            alpha=args.alpha,
            batch_size=args.batch_size,
            random_state=args.seed,
        )
        start = 0

    state = {"epoch": start}

    def save_and_exit(_signum: int, _frame: object) -> None:
        if checkpoint is not None:
            checkpoint.write_bytes(pickle.dumps((model, state["epoch"])))
            print(f"checkpoint saved at epoch {state['epoch']}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, save_and_exit)
    rng = np.random.default_rng(args.seed)
    for epoch in range(start + 1, args.epochs + 1):
        # One pass over the shuffled data; the model cuts it into its own minibatches.
        order = rng.permutation(len(x_train))
        model.partial_fit(x_train[order], y_train[order], classes=classes)
        val_acc = model.score(x_val, y_val)
        print(f"epoch {epoch} train_loss={model.loss_:.5f} val_acc={val_acc:.4f}", flush=True)
        state["epoch"] = epoch
        if args.epoch_seconds:
            time.sleep(args.epoch_seconds)
    print(f"final val_acc={val_acc:.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
