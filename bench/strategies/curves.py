"""Real learning curves, tabulated once: small MLPs trained epoch by epoch on data that
ships with scikit-learn (digits: classification error; diabetes: 1 - R^2, a noisier and
harder regression), 108 configs x 27 epochs each, cached under .bench-cache/strategies/
so that replays cost no training."""

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


def configs() -> list[dict[str, int]]:
    names = list(GRID)
    return [
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(range(len(GRID[n])) for n in names))
    ]


def key(config: dict[str, int]) -> str:
    return ",".join(str(config[n]) for n in GRID)


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


def load(task: str, processes: int = 2) -> dict[str, list[float]]:
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
