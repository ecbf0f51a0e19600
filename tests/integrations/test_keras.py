"""The Keras 3 callback with real Keras (torch backend, CPU): a small model built from a
config, scikit-learn data, a stop that ends training early, and a pause resumed from the
saved model."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.integrations.conftest import (
    METRIC,
    launched_env,
    pause_two_more,
    pausing_study,
    stopping_study,
)

# Keras reads its backend once, when first imported: the one installed with it here.
os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
pytestmark = pytest.mark.slow

from tunelab.integrations.keras import TunelabCallback  # noqa: E402


def data() -> tuple[Any, Any]:
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=96, n_features=4, noise=0.1, random_state=0)
    return x.astype("float32"), (y / 100).astype("float32")


def build(lr: float) -> Any:
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="mse")
    return model


def fit(callback: Any, model: Any, epochs: int, initial_epoch: int = 0) -> Any:
    x, y = data()
    return model.fit(
        x,
        y,
        validation_split=0.25,
        epochs=epochs,
        initial_epoch=initial_epoch,
        batch_size=16,
        verbose=0,
        callbacks=[callback],
    )


def steps(trial: Any) -> list[float]:
    items = trial.client.request("GET", f"/trials/{trial.id}/metrics")["items"]
    return sorted({p["step"] for p in items if p["name"] == METRIC})


def test_a_stop_decision_ends_training_early(client, server, monkeypatch, tmp_path):
    study = stopping_study(client)
    trial = study.ask()
    launched_env(monkeypatch, server, trial, tmp_path / "ckpt")
    callback = TunelabCallback()
    assert callback.trial_id == trial.id and callback.params == trial.params
    history = fit(callback, build(callback.params["lr"]), epochs=10)
    assert callback.decision == "stop" and len(history.history["loss"]) == 1
    trial.refresh()
    assert trial.state == "stopped" and steps(trial) == [1.0]
    names = {p["name"] for p in client.request("GET", f"/trials/{trial.id}/metrics")["items"]}
    assert names == {"loss", "val_loss"}


def test_outside_a_trial_it_asks_for_one_and_tells_the_result(client, server):
    study = client.create_study(
        name="plain keras",
        objective={"metric": METRIC, "direction": "minimize"},
        space={"lr": {"type": "float", "low": 0.001, "high": 0.01}},
    )
    callback = TunelabCallback(study=study.id, url=server)
    fit(callback, build(callback.params["lr"]), epochs=3)
    [trial] = study.trials()
    assert trial.state == "completed" and steps(trial) == [1.0, 2.0, 3.0]


def test_a_pause_saves_the_model_that_the_resumed_trial_goes_on_from(client, server):
    study = pausing_study(client)
    first = TunelabCallback(study=study.id, url=server)
    assert first.budget == 1.0 and first.resumed_model() is None and first.initial_epoch == 0
    model = build(first.params["lr"])
    fit(first, model, epochs=int(first.budget or 1))
    assert first.decision == "pause"
    saved = [w.copy() for w in model.get_weights()]

    pause_two_more(study)
    again = TunelabCallback(study=study.id, url=server)
    assert again.trial_id == first.trial_id and again.budget == 3.0
    resumed = again.resumed_model()
    assert resumed is not None and again.initial_epoch == 1
    assert all((a == b).all() for a, b in zip(resumed.get_weights(), saved, strict=True))
    history = fit(again, resumed, epochs=int(again.budget or 3), initial_epoch=again.initial_epoch)
    assert len(history.history["loss"]) == 2  # epochs 2 and 3 only
    assert steps(client.trial(first.trial_id)) == [1.0, 2.0, 3.0]


def test_a_run_that_never_reports_the_objective_fails_its_trial(client, server):
    study = client.create_study(
        name="wrong metric",
        objective={"metric": "val_accuracy", "direction": "maximize"},
        space={"lr": {"type": "float", "low": 0.001, "high": 0.01}},
    )
    callback = TunelabCallback(study=study.id, url=server)
    with pytest.warns(UserWarning, match="val_accuracy"):
        fit(callback, build(callback.params["lr"]), epochs=1)
    [trial] = study.trials()
    assert trial.state == "failed" and "val_accuracy" in trial.data["error"]
