"""The Lightning callback with real Lightning on CPU: a tiny model from a config,
synthetic data, a stop that ends training early, and a pause resumed from its checkpoint."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integrations.conftest import (
    METRIC,
    launched_env,
    pause_two_more,
    pausing_study,
    stopping_study,
)

pl = pytest.importorskip("lightning.pytorch")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from tunelab.integrations.lightning import TunelabCallback  # noqa: E402


class Regression(pl.LightningModule):
    """y = 3x - 1 with a linear layer; `val_loss` after each epoch."""

    def __init__(self, lr: float) -> None:
        super().__init__()
        self.lr = lr
        self.layer = torch.nn.Linear(1, 1)

    def _loss(self, batch: Any) -> Any:
        x, y = batch
        return torch.nn.functional.mse_loss(self.layer(x), y)

    def training_step(self, batch: Any, _: int) -> Any:
        return self._loss(batch)

    def validation_step(self, batch: Any, _: int) -> None:
        self.log(METRIC, self._loss(batch))

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.lr)


def loader() -> Any:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(64, 1, generator=generator)
    dataset = torch.utils.data.TensorDataset(x, 3 * x - 1)
    return torch.utils.data.DataLoader(dataset, batch_size=16)


def fit(callback: Any, max_epochs: int, ckpt_path: str | None = None) -> Any:
    torch.manual_seed(0)
    model = Regression(lr=callback.params["lr"])
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        callbacks=[callback],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader(), loader(), ckpt_path=ckpt_path)
    return trainer


def steps(trial: Any) -> list[float]:
    return [p["step"] for p in trial.client.request("GET", f"/trials/{trial.id}/metrics")["items"]]


def test_a_stop_decision_ends_training_early(client, server, monkeypatch, tmp_path):
    study = stopping_study(client)
    trial = study.ask()
    launched_env(monkeypatch, server, trial, tmp_path / "ckpt")
    callback = TunelabCallback()  # inside a launched trial: no arguments
    assert callback.trial_id == trial.id and callback.params == trial.params
    trainer = fit(callback, max_epochs=10)
    assert callback.decision == "stop"
    assert trainer.current_epoch == 1  # one epoch of ten
    trial.refresh()
    assert trial.state == "stopped" and steps(trial) == [1.0]


def test_outside_a_trial_it_asks_for_one_and_tells_the_result(client, server):
    study = client.create_study(
        name="plain",
        objective={"metric": METRIC, "direction": "minimize"},
        space={"lr": {"type": "float", "low": 0.05, "high": 0.1}},
    )
    callback = TunelabCallback(study=study.id, url=server)
    fit(callback, max_epochs=3)
    [trial] = study.trials()
    assert trial.state == "completed" and steps(trial) == [1.0, 2.0, 3.0]
    assert trial.value is not None and trial.value < 5.0


def test_outside_a_trial_without_a_study_is_a_clear_error():
    with pytest.raises(ValueError, match="study"):
        TunelabCallback()


def test_a_pause_saves_a_checkpoint_that_the_resumed_trial_goes_on_from(client, server):
    study = pausing_study(client)
    first = TunelabCallback(study=study.id, url=server)
    assert first.budget == 1.0 and first.resume_checkpoint is None
    fit(first, max_epochs=int(first.budget or 1))
    assert first.decision == "pause" and first.resume_checkpoint is not None
    weights = torch.load(first.resume_checkpoint, weights_only=False)["state_dict"]

    pause_two_more(study)
    again = TunelabCallback(study=study.id, url=server)
    assert again.trial_id == first.trial_id and again.budget == 3.0
    assert again.resume_checkpoint == first.resume_checkpoint

    started: dict[str, Any] = {}

    class Probe(pl.Callback):
        def on_train_start(self, trainer: Any, module: Any) -> None:
            started["epoch"] = trainer.current_epoch
            started["weight"] = module.layer.weight.detach().clone()

    torch.manual_seed(0)
    model = Regression(lr=again.params["lr"])
    trainer = pl.Trainer(
        max_epochs=int(again.budget or 3),
        callbacks=[again, Probe()],
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(model, loader(), loader(), ckpt_path=again.resume_checkpoint)
    # It went on from the end of epoch 1 with the saved weights, not from scratch.
    assert started["epoch"] == 1
    assert torch.equal(started["weight"], weights["layer.weight"])
    trial = client.trial(first.trial_id)
    assert steps(trial) == [1.0, 2.0, 3.0]
