"""A small MLP on a synthetic 5-class problem, trained on a fraction of its data.

    python examples/data_fraction/train.py --data_fraction 0.01 --epochs 5 --lr 0.003 \
        --per_device_batch_size 22 --nodes 2 --gpus_per_node 8

`--data_fraction` takes the first share of a fixed shuffle of the training set, so 1%
is a subset of 10% is a subset of the whole. The global batch is the per-device batch
times the (simulated) world size, as in data-parallel training. Each epoch prints

    epoch 3 train_loss=0.812 val_loss=0.734 val_acc=0.771

which a worker reads with the regexes of study.yaml; `tune.py` calls `train()` directly.

With `--stream` the data fraction is the fidelity itself (study_fidelity.yaml): one pass
over a growing share of the data, printing `fraction 0.1 val_loss=...` each time the share
seen reaches 1%, 3%, 10%, 30% and 100% (up to `--data_fraction`), so that ASHA or
Hyperband can stop a poor config after 1% of the data.
"""

from __future__ import annotations

import argparse
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

DATA_SEED = 0


@dataclass(frozen=True)
class Config:
    data_fraction: float = 1.0
    epochs: int = 5
    lr: float = 1e-3
    per_device_batch_size: int = 22
    nodes: int = 1
    gpus_per_node: int = 1
    alpha: float = 1e-4
    hidden: int = 64
    n_samples: int = 100_000
    seed: int = 0

    @property
    def global_batch(self) -> int:
        return self.per_device_batch_size * self.nodes * self.gpus_per_node


def load(n_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x, y = make_classification(
        n_samples=n_samples,
        n_features=40,
        n_informative=20,
        n_redundant=5,
        n_classes=5,
        class_sep=1.0,
        flip_y=0.02,
        random_state=DATA_SEED,
    )
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=DATA_SEED)
    return x_train, y_train, x_val, y_val


def train(config: Config) -> Iterator[tuple[int, dict[str, float]]]:
    """Yields (epoch, metrics) after each epoch."""
    if not 0 < config.data_fraction <= 1:
        raise ValueError(f"data_fraction must be in (0, 1], got {config.data_fraction}")
    x_train, y_train, x_val, y_val = load(config.n_samples)
    count = max(10, math.ceil(config.data_fraction * len(x_train)))
    x_train, y_train = x_train[:count], y_train[:count]
    model = MLPClassifier(
        hidden_layer_sizes=(config.hidden,),
        solver="adam",
        learning_rate_init=config.lr,
        alpha=config.alpha,
        batch_size=min(config.global_batch, count),
        random_state=config.seed,
    )
    classes = np.unique(y_val)
    for epoch in range(1, config.epochs + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(x_train, y_train, classes=classes)
        proba = model.predict_proba(x_val)
        yield (
            epoch,
            {
                "train_loss": float(model.loss_),
                "val_loss": float(log_loss(y_val, proba, labels=classes)),
                "val_acc": float((proba.argmax(axis=1) == y_val).mean()),
            },
        )


STREAM_FRACTIONS = (0.01, 0.03, 0.1, 0.3, 1.0)


def stream(config: Config) -> Iterator[tuple[float, dict[str, float]]]:
    """Yields (share of the data seen, metrics) while passing once over the data."""
    x_train, y_train, x_val, y_val = load(config.n_samples)
    model = MLPClassifier(
        hidden_layer_sizes=(config.hidden,),
        solver="adam",
        learning_rate_init=config.lr,
        alpha=config.alpha,
        batch_size=config.global_batch,
        random_state=config.seed,
    )
    classes = np.unique(y_val)
    seen = 0
    for fraction in (f for f in STREAM_FRACTIONS if f <= config.data_fraction + 1e-12):
        end = max(seen + 1, math.ceil(fraction * len(x_train)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(x_train[seen:end], y_train[seen:end], classes=classes)
        seen = end
        proba = model.predict_proba(x_val)
        yield (
            fraction,
            {
                "val_loss": float(log_loss(y_val, proba, labels=classes)),
                "val_acc": float((proba.argmax(axis=1) == y_val).mean()),
            },
        )


def parse(argv: list[str] | None = None) -> tuple[Config, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data_fraction", type=float, default=1.0, help="share of the training set"
    )
    parser.add_argument("--epochs", type=float, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--per_device_batch_size", type=int, default=22)
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--gpus_per_node", type=int, default=1)
    parser.add_argument("--alpha", type=float, default=1e-4)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--n_samples", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stream", action="store_true", help="report by share of the data seen")
    args = parser.parse_args(argv)
    streaming = args.stream
    del args.stream
    # Workers pass every value as text; an epochs budget may arrive as "3.0".
    return Config(**{**vars(args), "epochs": int(args.epochs)}), streaming


def main(argv: list[str] | None = None) -> None:
    config, streaming = parse(argv)
    if streaming:
        for fraction, metrics in stream(config):
            line = " ".join(f"{name}={value:.6g}" for name, value in metrics.items())
            print(f"fraction {fraction:g} {line}", flush=True)
        return
    for epoch, metrics in train(config):
        line = " ".join(f"{name}={value:.6g}" for name, value in metrics.items())
        print(f"epoch {epoch} {line}", flush=True)


if __name__ == "__main__":
    main()
