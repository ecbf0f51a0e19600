"""The issue's finish line: tune the example's model on 1% of its data through the API,
promote the best three configs to the whole data on a larger world with one call, and
analyse both studies in one pandas dataframe."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from tests.client.live import patient_live_server
from tests.fixtures.services import ROOT
from tunelab.client import Client

EXAMPLE = ROOT / "examples" / "data_fraction"


def _load(name: str):
    # tune.py imports its neighbour `train`; other examples have a train.py too.
    other = sys.modules.pop("train", None)
    sys.path.insert(0, str(EXAMPLE))
    try:
        spec = importlib.util.spec_from_file_location(
            f"data_fraction_{name}", EXAMPLE / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(EXAMPLE))
        sys.modules.pop("train", None)
        if other is not None:
            sys.modules["train"] = other


@pytest.fixture
def server_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    with patient_live_server(db_url, tmp_path) as url:
        yield url


@pytest.mark.slow
def test_tune_on_one_percent_then_promote_the_best_three(server_url):
    tune = _load("tune")
    with Client(server_url) as client:
        small = client.create_study(tune.study_body(trials=6, epochs=2))
        tune.run_trials(small, tune.SMALL_WORLD, n_samples=5000)
        assert small.refresh().state == "completed"

        large = small.promote(
            tune.LARGE_WORLD, top_k=3, rule="linear", overrides={"data_fraction": 1.0}
        )
        assert large.data["parent_study_id"] == small.id
        assert [t.state for t in large.trials()] == ["queued"] * 3
        tune.run_trials(large, tune.LARGE_WORLD, n_samples=5000)
        assert large.refresh().state == "completed"

        first, second = small.dataframe(), large.dataframe()
        both = pd.concat([first, second], ignore_index=True)
        assert (
            len(first) == 6 and len(second) == 3 and set(both["study_id"]) == {small.id, large.id}
        )
        assert set(first["params_data_fraction"]) == {0.01} and set(
            second["params_data_fraction"]
        ) == {1.0}
        best3 = first[first.state == "completed"].nsmallest(3, "value")
        assert sorted(second["params_lr"]) == pytest.approx(sorted(best3["params_lr"] * 2))
        assert sorted(second["params_per_device_batch_size"]) == sorted(
            best3["params_per_device_batch_size"]
        )
        assert (second["best_so_far"].diff().dropna() <= 0).all()  # minimize: never worse
        curves = pd.concat([small.curves(["val_loss"]), large.curves(["val_loss"])])
        assert len(curves) == (6 + 3) * 2
        lineage = small.lineage()
        assert [c["id"] for c in lineage["children"]] == [large.id]
