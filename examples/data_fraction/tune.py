"""Tune on 1% of the data, promote the best three configs to the full data on twice the
GPUs with one call, and compare both studies in pandas.

    tunelab serve &                          # http://127.0.0.1:8000
    python examples/data_fraction/tune.py --trials 12

This script runs the trials itself through the API (ask, report, tell); with workers,
`tunelab study create -f examples/data_fraction/study.yaml` runs the same model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train import Config, train

from tunelab.client import Client, Study, TunelabError

SMALL_WORLD = {"nodes": 2, "gpus_per_node": 8}
LARGE_WORLD = {"nodes": 4, "gpus_per_node": 8}


def study_body(trials: int, epochs: int, name: str = "mlp on 1% of the data") -> dict[str, Any]:
    return {
        "name": name,
        "objective": {"metric": "val_loss", "direction": "minimize"},
        "space": {
            "lr": {
                "type": "float",
                "low": 1e-4,
                "high": 3e-2,
                "scale": "log",
                "role": "learning_rate",
            },
            "per_device_batch_size": {
                "type": "categorical",
                "choices": [8, 16, 22, 32],
                "role": "per_device_batch_size",
            },
            "alpha": {"type": "float", "low": 1e-6, "high": 1e-2, "scale": "log"},
            "hidden": {"type": "int", "low": 16, "high": 128, "scale": "log"},
            "data_fraction": {"type": "fixed", "value": 0.01},
            "epochs": {"type": "fixed", "value": epochs},
        },
        "strategy": {"name": "random", "seed": 1},
        "limits": {"max_trials": trials, "max_parallel_trials": 1},
        # The world the configs are tuned for: scaling rules start from it.
        "tags": {"world": SMALL_WORLD},
    }


def run_trials(study: Study, world: dict[str, int], n_samples: int) -> None:
    """Asks for trials until the study has none left, and runs each one here."""
    while not study.refresh().finished:
        try:
            trial = study.ask()
        except TunelabError as error:
            if error.status_code == 410:  # the study ended meanwhile
                return
            raise
        params = trial.params
        config = Config(
            data_fraction=float(params["data_fraction"]),
            epochs=int(params["epochs"]),
            lr=float(params["lr"]),
            per_device_batch_size=int(params["per_device_batch_size"]),
            alpha=float(params["alpha"]),
            hidden=int(params["hidden"]),
            n_samples=n_samples,
            **world,
        )
        for epoch, metrics in train(config):
            if trial.report(epoch, **metrics) != "continue":
                break
        trial.complete()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=None, help="default: TUNELAB_URL or http://127.0.0.1:8000")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n_samples", type=int, default=100_000)
    parser.add_argument(
        "--out", default="studies.parquet", help="both studies' trials (.csv or .parquet)"
    )
    args = parser.parse_args(argv)

    import pandas as pd

    with Client(args.url) as client:
        small = client.create_study(study_body(args.trials, args.epochs))
        run_trials(small, SMALL_WORLD, args.n_samples)
        # One call: the best three configs, learning rate scaled linearly with the global
        # batch, on the whole data, queued in a new study.
        large = small.promote(LARGE_WORLD, top_k=3, rule="linear", overrides={"data_fraction": 1.0})
        run_trials(large, LARGE_WORLD, args.n_samples)

        both = pd.concat([small.dataframe(), large.dataframe()], ignore_index=True)
        print(
            both[
                [
                    "study_id",
                    "number",
                    "params_lr",
                    "params_per_device_batch_size",
                    "params_data_fraction",
                    "value",
                    "best_so_far",
                    "duration_s",
                ]
            ].to_string()
        )
        curves = pd.concat([small.curves(["val_loss"]), large.curves(["val_loss"])])
        print(curves.groupby(["study_id", "step"])["value"].min().unstack("study_id"))
        target = Path(args.out)
        if target.suffix == ".parquet":
            both.to_parquet(target, index=False)
        else:
            both.to_csv(target, index=False)
        print(f"wrote {target}")


if __name__ == "__main__":
    main()
