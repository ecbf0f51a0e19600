"""The examples in examples/integrations/ tune under a real `tunelab serve`: the server
launches each script as a trial ({python} in the command), the callback finds its trial
from the environment, and a stop decision ends the training after its first epoch."""

from __future__ import annotations

import time

import pytest
import yaml

from tests.fixtures.services import ROOT

pytestmark = pytest.mark.slow

EXAMPLES = {
    "lightning": "lightning.pytorch",
    "keras": "keras",
    "transformers": "transformers",
}


@pytest.mark.parametrize("framework", sorted(EXAMPLES))
def test_the_example_stops_early_on_a_decision(client, framework):
    pytest.importorskip(EXAMPLES[framework])
    body = yaml.safe_load((ROOT / f"examples/integrations/{framework}.yaml").read_text())
    metric = body["objective"]["metric"]
    body["limits"] = {"max_trials": 2, "max_parallel_trials": 1}
    body["early_stopping"] = {"rule": "median", "min_trials": 1}
    body["strategy"] = {"name": "random", "seed": 0}
    # A perfect result beside the run: the median rule stops the run at its first report
    # (the script takes seconds to import its framework; the result is in long before).
    study = client.create_study(body)
    anchor = {
        name: spec.get("low", (spec.get("choices") or [None])[0])
        for name, spec in body["space"].items()
    }
    study.add_result(
        anchor, 0.0, metrics=[{"name": metric, "step": k, "value": 0.0} for k in range(1, 51)]
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not study.refresh().finished:
        time.sleep(1.0)
    trials = study.trials()
    runs = [t for t in trials if t.data["source"] != "imported"]
    assert runs, f"the server launched no trial: {study.state} {study.data['state_reason']!r}"
    run = runs[0]
    log = client.logs(run.id)["text"]
    assert study.finished, log
    assert run.state == "stopped", log
    steps = sorted(
        {
            p["step"]
            for p in client.request("GET", f"/trials/{run.id}/metrics")["items"]
            if p["name"] == metric
        }
    )
    assert steps == [1.0], log
