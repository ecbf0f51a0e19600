"""The Transformers callback with the real Trainer on CPU: a tiny BERT built from a
config (no download), synthetic data, a stop that ends training early, and a pause
resumed from the Trainer's checkpoint."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integrations.conftest import launched_env, pause_two_more, pausing_study, stopping_study

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
pytestmark = pytest.mark.slow

from tunelab.integrations.transformers import TunelabCallback  # noqa: E402

METRIC = "eval_loss"


def tiny_model() -> Any:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=32,
        hidden_size=8,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=16,
        max_position_embeddings=16,
        num_labels=2,
    )
    return transformers.BertForSequenceClassification(config)


def dataset(n: int = 64) -> list[dict[str, Any]]:
    """Sequences of 8 tokens; the label says whether token 5 occurs."""
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 32, (n, 8), generator=generator)
    return [
        {
            "input_ids": row,
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": int(bool((row == 5).any())),
        }
        for row in ids
    ]


def trainer(callback: Any, folder: Any, epochs: float, *extra: Any) -> Any:
    args = transformers.TrainingArguments(
        output_dir=str(folder),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        per_device_eval_batch_size=32,
        learning_rate=callback.params["lr"],
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        logging_strategy="no",
        disable_tqdm=True,
        seed=0,
    )
    return transformers.Trainer(
        model=tiny_model(),
        args=args,
        train_dataset=dataset(),
        eval_dataset=dataset(32),
        callbacks=[callback, *extra],
    )


def steps(trial: Any) -> list[float]:
    items = trial.client.request("GET", f"/trials/{trial.id}/metrics")["items"]
    return sorted({p["step"] for p in items if p["name"] == METRIC})


def test_a_stop_decision_ends_training_early(client, server, monkeypatch, tmp_path):
    study = stopping_study(client, METRIC)
    trial = study.ask()
    launched_env(monkeypatch, server, trial, tmp_path / "ckpt")
    callback = TunelabCallback()
    assert callback.trial_id == trial.id
    run = trainer(callback, tmp_path / "ckpt", epochs=10)
    run.train()
    assert callback.decision == "stop"
    assert run.state.global_step == 4  # one epoch of ten (64 samples, batches of 16)
    trial.refresh()
    assert trial.state == "stopped" and steps(trial) == [4.0]
    items = client.request("GET", f"/trials/{trial.id}/metrics")["items"]
    assert not any(p["name"].endswith("_runtime") for p in items)


def test_outside_a_trial_it_asks_for_one_and_tells_the_result(client, server, tmp_path):
    study = client.create_study(
        name="plain hf",
        objective={"metric": METRIC, "direction": "minimize"},
        space={"lr": {"type": "float", "low": 0.001, "high": 0.01}},
    )
    callback = TunelabCallback(study=study.id, url=server, step="epoch")
    trainer(callback, tmp_path / "out", epochs=2).train()
    [trial] = study.trials()
    assert trial.state == "completed" and steps(trial) == [1.0, 2.0]


def test_a_pause_saves_a_checkpoint_that_the_resumed_trial_goes_on_from(client, server):
    study = pausing_study(client, METRIC)
    first = TunelabCallback(study=study.id, url=server, step="epoch")
    assert first.budget == 1.0 and first.resume_checkpoint is None
    trainer(first, first.checkpoint_dir, epochs=first.budget).train()
    assert first.decision == "pause"

    pause_two_more(study, METRIC)
    again = TunelabCallback(study=study.id, url=server, step="epoch")
    assert again.trial_id == first.trial_id and again.budget == 3.0
    assert again.resume_checkpoint is not None and again.resume_checkpoint.endswith("checkpoint-4")

    began: dict[str, Any] = {}

    class Probe(transformers.TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            began["step"] = state.global_step

    run = trainer(again, again.checkpoint_dir, again.budget, Probe())
    run.train(resume_from_checkpoint=again.resume_checkpoint)
    assert began["step"] == 4 and run.state.global_step == 12
    assert steps(client.trial(first.trial_id)) == [1.0, 2.0, 3.0]
