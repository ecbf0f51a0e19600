"""Hugging Face Transformers: `TunelabCallback` is a `TrainerCallback` that reports the
metrics of each evaluation, sets `control.should_training_stop` when the study stops the
trial, and saves a checkpoint first when it pauses it.

    from tunelab.integrations.transformers import TunelabCallback

    tunelab = TunelabCallback()              # in a trial Tunelab launched
    # tunelab = TunelabCallback(study=3)     # anywhere else: asks study 3 for a trial
    args = TrainingArguments(
        output_dir=str(tunelab.checkpoint_dir),  # where a pause saves and a resume looks
        learning_rate=tunelab.params["learning_rate"],
        eval_strategy="epoch",
        num_train_epochs=tunelab.budget or 3,
    )
    trainer = Trainer(model, args, train_dataset=..., eval_dataset=..., callbacks=[tunelab])
    trainer.train(resume_from_checkpoint=tunelab.resume_checkpoint)

Metrics are reported under the names the Trainer gives them (`eval_loss`,
`eval_accuracy`); timings (`eval_runtime`, `..._per_second`) and `epoch` are left out.
The step is the global step (`step="epoch"`: the epoch). Transformers is imported on
first use of `TunelabCallback`, never by `import tunelab`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tunelab.integrations._core import (
    PAUSE,
    SessionView,
    TrialSession,
    lazy_class,
    step_kind,
)

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")
# Not metrics of the model: how long the evaluation took, and where in training it was.
_SKIPPED = ("_runtime", "_per_second", "_steps_per_second", "_samples_per_second")


__getattr__ = lazy_class("TunelabCallback", lambda: _build())


def latest_checkpoint(folder: Path | None) -> str | None:
    """The `checkpoint-N` folder of the highest step under `folder`, if any."""
    if folder is None or not folder.is_dir():
        return None
    found = [
        (int(match.group(1)), path)
        for path in folder.iterdir()
        if path.is_dir() and (match := _CHECKPOINT.match(path.name))
    ]
    return str(max(found)[1]) if found else None


def _build() -> type:
    try:
        import transformers
    except ImportError:
        raise ImportError(
            "tunelab.integrations.transformers needs Transformers: pip install transformers"
        ) from None

    class TunelabCallback(SessionView, transformers.TrainerCallback):
        def __init__(
            self,
            study: int | None = None,
            *,
            url: str | None = None,
            token: str | None = None,
            metrics: list[str] | None = None,
            step: str = "global_step",
            checkpoint_dir: str | Path | None = None,
        ) -> None:
            self.step = step_kind(step)
            self.session = TrialSession(
                study, url=url, token=token, metrics=metrics, checkpoint_dir=checkpoint_dir
            )
            self.output_dir: Path | None = None

        @property
        def checkpoint_dir(self) -> Path | None:
            return self.session.checkpoint_dir

        @property
        def resume_checkpoint(self) -> str | None:
            """The newest `checkpoint-N` in the trial's folder (or the Trainer's
            `output_dir`, once the Trainer is made) when the trial is resumed; else None."""
            if not self.session.resumed:
                return None
            return latest_checkpoint(self.output_dir) or latest_checkpoint(
                self.session.checkpoint_dir
            )

        def on_init_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.output_dir = Path(args.output_dir) if args.output_dir else None

        def on_evaluate(
            self,
            args: Any,
            state: Any,
            control: Any,
            metrics: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            if not state.is_world_process_zero:
                return
            values = {
                name: value
                for name, value in (metrics or {}).items()
                if name != "epoch" and not name.endswith(_SKIPPED)
            }
            step = state.epoch if self.step == "epoch" else state.global_step
            self.session.report(round(step) if self.step == "epoch" else step, values)
            if self.session.decision == PAUSE:
                # The Trainer saves right after this hook (checkpoint-<global step>).
                control.should_save = True
            if self.session.should_stop:
                control.should_training_stop = True

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.is_world_process_zero:
                self.session.finish()

    return TunelabCallback
