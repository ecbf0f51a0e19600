"""Real learning curves, tabulated once: small MLPs trained epoch by epoch on data that
ships with scikit-learn, so that replays cost no training.

- `digits` and `diabetes` (classification error; 1 - R^2, a noisier and harder
  regression): 108 configs x 27 epochs each, cached under .bench-cache/strategies/.
- `pool`: 432 configs x 27 epochs on digits (learning rate 12 values from 1e-4 to 0.1,
  L2 3, width 2, batch 2, activation 3: four times the configs of `digits`, and six
  learning rates more), kept in the repository as bench/strategies/data/pool-digits.npz
  (about 2 minutes of one idle core to rebuild with `python -m bench.strategies.curves`).
  Random search needs about 100 full runs to find one of its best 1 %, the regime where
  early stopping can save most."""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

CACHE = Path(__file__).resolve().parents[2] / ".bench-cache" / "strategies"
EPOCHS = 27
# The search space of the replay: the grid the curves were tabulated on (index params).
GRID: dict[str, list[Any]] = {
    "lr": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
    "alpha": [1e-4, 1e-2, 1.0],
    "width": [16, 32, 64],
    "batch": [64, 256],
}
TASKS = ("digits", "diabetes")

# The larger pool: index params over these values (432 configs).
POOL_GRID: dict[str, list[Any]] = {
    "lr": [float(v) for v in np.geomspace(1e-4, 1e-1, 12).round(6)],
    "alpha": [1e-4, 1e-2, 1.0],
    "width": [16, 64],
    "batch": [64, 256],
    "activation": ["relu", "tanh", "logistic"],
}
POOL_FILE = Path(__file__).resolve().parent / "data" / "pool-digits.npz"


def configs(grid: dict[str, list[Any]] | None = None) -> list[dict[str, int]]:
    grid = GRID if grid is None else grid
    names = list(grid)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(range(len(grid[n])) for n in names))
    ]


def key(config: dict[str, int]) -> str:
    """The table key of a config of index params (the grid is read from its names)."""
    return ",".join(str(config[n]) for n in (POOL_GRID if "activation" in config else GRID))


def grid_of(task: str) -> dict[str, list[Any]]:
    return POOL_GRID if task == "pool" else GRID


def _data(task: str) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_diabetes, load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if task == "digits":
        x, y = load_digits(return_X_y=True)
    else:
        x, y = load_diabetes(return_X_y=True)
        y = (y - y.mean()) / y.std()
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=0)
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_val), y_train, y_val


def _curve(args: tuple[str, dict[str, int]]) -> tuple[str, list[float]]:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    task, config = args
    x_train, x_val, y_train, y_val = _data(task)
    params = {n: GRID[n][i] for n, i in config.items()}
    common = dict(
        hidden_layer_sizes=(params["width"],),
        alpha=params["alpha"],
        batch_size=params["batch"],
        learning_rate_init=params["lr"],
        random_state=0,
        solver="adam",
    )
    curve: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if task == "digits":
            model = MLPClassifier(**common)
            classes = np.unique(y_train)
            for _ in range(EPOCHS):
                model.partial_fit(x_train, y_train, classes=classes)
                curve.append(float(1 - model.score(x_val, y_val)))
        else:
            model = MLPRegressor(**common)
            for _ in range(EPOCHS):
                model.partial_fit(x_train, y_train)
                curve.append(float(min(2.0, 1 - model.score(x_val, y_val))))
    return key(config), curve


def _pool_curve(config: dict[str, int]) -> list[float]:
    from sklearn.neural_network import MLPClassifier

    x_train, x_val, y_train, y_val = _DIGITS
    params = {n: POOL_GRID[n][i] for n, i in config.items()}
    model = MLPClassifier(
        hidden_layer_sizes=(params["width"],),
        alpha=params["alpha"],
        batch_size=params["batch"],
        learning_rate_init=params["lr"],
        activation=params["activation"],
        random_state=0,
        solver="adam",
    )
    classes = np.unique(y_train)
    curve = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(EPOCHS):
            model.partial_fit(x_train, y_train, classes=classes)
            curve.append(float(1 - model.score(x_val, y_val)))
    return curve


_DIGITS: tuple[np.ndarray, ...] = ()


def tabulate_pool(part: int = 0, parts: int = 1) -> None:
    """Trains the pool's configs once (configs part, part + parts, ...; one process each,
    resumable: a partial file per part is kept); the last part to finish writes the file."""
    global _DIGITS
    _DIGITS = _data("digits")
    todo = configs(POOL_GRID)
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = CACHE / f"pool-digits.partial-{part}.json"
    done: dict[str, list[float]] = json.loads(partial.read_text()) if partial.exists() else {}
    for n, config in enumerate(todo[part::parts], 1):
        if key(config) not in done:
            done[key(config)] = _pool_curve(config)
        if n % 20 == 0:
            partial.write_text(json.dumps(done))
            print(f"part {part}: {n} / {len(todo[part::parts])}", flush=True)
    partial.write_text(json.dumps(done))
    merged: dict[str, list[float]] = {}
    for other in range(parts):
        path = CACHE / f"pool-digits.partial-{other}.json"
        if path.exists():
            merged.update(json.loads(path.read_text()))
    if any(key(c) not in merged for c in todo):
        return  # another part is still training
    # Validation errors are multiples of 1/450 (the held-out quarter of digits): stored
    # as counts of misclassified samples, they compress to a few kilobytes.
    errors = np.array([merged[key(c)] for c in todo])
    counts = np.rint(errors * len(_DIGITS[3])).astype(np.uint16)
    POOL_FILE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(POOL_FILE, counts=counts, samples=np.array(len(_DIGITS[3])))
    for other in range(parts):
        (CACHE / f"pool-digits.partial-{other}.json").unlink(missing_ok=True)


def load_pool() -> dict[str, list[float]]:
    if not POOL_FILE.exists():
        tabulate_pool()
    with np.load(POOL_FILE) as data:
        errors = data["counts"].astype(float) / float(data["samples"])
    return {
        key(c): [float(v) for v in row] for c, row in zip(configs(POOL_GRID), errors, strict=True)
    }


def load(task: str, processes: int = 2) -> dict[str, list[float]]:
    if task == "pool":
        return load_pool()
    path = CACHE / f"curves-{task}.json"
    if path.exists():
        return dict(json.loads(path.read_text()))
    from multiprocessing import Pool

    CACHE.mkdir(parents=True, exist_ok=True)
    # Partial results survive an interrupted run: training is the slow part.
    partial = CACHE / f"curves-{task}.partial.json"
    table: dict[str, list[float]] = json.loads(partial.read_text()) if partial.exists() else {}
    todo = [(task, c) for c in configs() if key(c) not in table]
    with Pool(processes) as pool:
        for done, (name, curve) in enumerate(pool.imap_unordered(_curve, todo), 1):
            table[name] = curve
            if done % 10 == 0:
                partial.write_text(json.dumps(table))
    path.write_text(json.dumps(table))
    partial.unlink(missing_ok=True)
    return table


if __name__ == "__main__":
    import sys

    # python -m bench.strategies.curves [part parts]: parts run side by side.
    tabulate_pool(*(int(a) for a in sys.argv[1:3]))
