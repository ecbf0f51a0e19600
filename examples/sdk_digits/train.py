"""Digits with an SGD classifier, reporting through the Tunelab SDK instead of printing.

`report(...).should_stop` tells the script when the study's scheduler stopped or paused
it; the script then saves a checkpoint and exits.

    python examples/sdk_digits/train.py --lr 0.01 --alpha 1e-4 --epochs 20
"""

from __future__ import annotations

import argparse
import pickle
import sys
import warnings

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from tunelab import checkpoint_dir, report


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=1e-4)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        x, y, test_size=0.25, random_state=args.seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)

    folder = checkpoint_dir()
    saved = folder / "model.pkl" if folder else None
    if saved is not None and saved.exists():
        model, start = pickle.loads(saved.read_bytes())
    else:
        model = SGDClassifier(
            loss="log_loss",
            learning_rate="constant",
            eta0=args.lr,
            alpha=args.alpha,
            random_state=args.seed,
        )
        start = 0
    rng = np.random.default_rng(args.seed + start)
    for epoch in range(start + 1, args.epochs + 1):
        order = rng.permutation(len(x_train))
        model.partial_fit(x_train[order], y_train[order], classes=np.arange(10))
        val_acc = model.score(x_val, y_val)
        print(f"epoch {epoch} val_acc={val_acc:.4f}", flush=True)
        decision = report(step=epoch, val_acc=val_acc)
        if decision.should_stop:
            if saved is not None:
                saved.write_bytes(pickle.dumps((model, epoch)))
            print(f"{decision.decision}: {decision.reason}", flush=True)
            break
    return 0


if __name__ == "__main__":
    sys.exit(main())
