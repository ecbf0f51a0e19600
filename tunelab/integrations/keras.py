"""Keras 3 (any backend): `TunelabCallback` reports the logs of each epoch (training and
validation metrics: `loss`, `val_loss`, ...) and sets `model.stop_training` when the
study stops the trial, after saving the model (optimizer state included) on a pause.

    from tunelab.integrations.keras import TunelabCallback

    tunelab = TunelabCallback()              # in a trial Tunelab launched
    # tunelab = TunelabCallback(study=3)     # anywhere else: asks study 3 for a trial
    model = tunelab.resumed_model() or build(tunelab.params)
    model.fit(x, y, validation_split=0.2, epochs=int(tunelab.budget or 10),
              initial_epoch=tunelab.initial_epoch, callbacks=[tunelab])

The step is the epoch, counting from 1. Keras is imported on first use of
`TunelabCallback`, never by `import tunelab`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.integrations._core import PAUSE, SessionView, TrialSession, lazy_class

CHECKPOINT = "tunelab-model.keras"


__getattr__ = lazy_class("TunelabCallback", lambda: _build())


def _build() -> type:
    try:
        import keras
    except ImportError:
        raise ImportError("tunelab.integrations.keras needs Keras 3: pip install keras") from None

    class TunelabCallback(SessionView, keras.callbacks.Callback):
        def __init__(
            self,
            study: int | None = None,
            *,
            url: str | None = None,
            token: str | None = None,
            metrics: list[str] | None = None,
            checkpoint_dir: str | Path | None = None,
        ) -> None:
            super().__init__()
            self.session = TrialSession(
                study, url=url, token=token, metrics=metrics, checkpoint_dir=checkpoint_dir
            )

        @property
        def params(self) -> dict[str, Any]:
            """The trial's hyperparameters. (Keras's own `Callback.params`, the fit
            arguments, are kept as `fit_params`.)"""
            return self.session.params

        @params.setter
        def params(self, value: dict[str, Any]) -> None:
            self.fit_params = value

        @property
        def resume_checkpoint(self) -> str | None:
            path = self.session.checkpoint_path(CHECKPOINT)
            if not self.session.resumed or path is None or not path.exists():
                return None
            return str(path)

        @property
        def initial_epoch(self) -> int:
            """The epochs done before the pause the trial resumes from (0: none)."""
            if self.resume_checkpoint is None:
                return 0
            return int(self.session.saved_state().get("epoch", 0))

        def resumed_model(self) -> Any:
            """The model saved at the pause this trial resumes from, or None."""
            path = self.resume_checkpoint
            return None if path is None else keras.saving.load_model(path)

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.session.report(epoch + 1, logs or {})
            if self.session.decision == PAUSE:
                path = self.session.checkpoint_path(CHECKPOINT)
                if path is not None:
                    self.model.save(str(path))
                    self.session.save_state(epoch=epoch + 1)
            if self.session.should_stop:
                self.model.stop_training = True

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            self.session.finish()

    return TunelabCallback
