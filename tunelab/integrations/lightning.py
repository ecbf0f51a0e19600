"""PyTorch Lightning: `TunelabCallback` reports the validation metrics of each epoch and
ends training when the study stops or pauses the trial.

    from tunelab.integrations.lightning import TunelabCallback

    tunelab = TunelabCallback()              # in a trial Tunelab launched
    # tunelab = TunelabCallback(study=3)     # anywhere else: asks study 3 for a trial
    model = Net(lr=tunelab.params["lr"])
    trainer = L.Trainer(max_epochs=int(tunelab.budget or 10), callbacks=[tunelab])
    trainer.fit(model, data, ckpt_path=tunelab.resume_checkpoint)

On a pause it saves a checkpoint in the trial's checkpoint folder first; a resumed trial
gets the same folder, and `resume_checkpoint` names the checkpoint to go on from (None
for a fresh trial). Lightning is imported on first use of `TunelabCallback` (from
`lightning`, else `pytorch_lightning`), never by `import tunelab`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunelab.integrations._core import (
    PAUSE,
    SessionView,
    TrialSession,
    lazy_class,
    step_kind,
)

CHECKPOINT = "tunelab-last.ckpt"


__getattr__ = lazy_class("TunelabCallback", lambda: _build())


def _lightning() -> Any:
    try:
        import lightning.pytorch

        return lightning.pytorch
    except ImportError:
        pass
    try:
        import pytorch_lightning

        return pytorch_lightning
    except ImportError:
        raise ImportError(
            "tunelab.integrations.lightning needs Lightning: pip install lightning"
        ) from None


def _build() -> type:
    Callback: Any = _lightning().Callback

    class TunelabCallback(SessionView, Callback):
        """Reports `trainer.callback_metrics` after each validation (at step = epoch,
        counting from 1, or the global step with `step="global_step"`); `metrics` limits
        which are sent."""

        def __init__(
            self,
            study: int | None = None,
            *,
            url: str | None = None,
            token: str | None = None,
            metrics: list[str] | None = None,
            step: str = "epoch",
            checkpoint_dir: str | Path | None = None,
        ) -> None:
            super().__init__()
            self.step = step_kind(step)
            self._saved = False
            self.session = TrialSession(
                study, url=url, token=token, metrics=metrics, checkpoint_dir=checkpoint_dir
            )

        @property
        def resume_checkpoint(self) -> str | None:
            path = self.session.checkpoint_path(CHECKPOINT)
            return str(path) if path is not None and path.exists() else None

        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.sanity_checking:
                return
            step = trainer.current_epoch + 1 if self.step == "epoch" else trainer.global_step
            if trainer.is_global_zero:
                self.session.report(step, dict(trainer.callback_metrics))
            # Every process of a distributed run ends (and saves) together: rank 0's
            # answer goes to all of them.
            self.session.decision = trainer.strategy.broadcast(self.session.decision, 0)
            if self.session.should_stop:
                trainer.should_stop = True

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            # Saved here rather than at the validation's end: a checkpoint from inside the
            # epoch would make the resumed run train that epoch again.
            if self.session.decision == PAUSE and not self._saved:
                path = self.session.checkpoint_path(CHECKPOINT)
                if path is not None:
                    trainer.save_checkpoint(str(path))
                    self._saved = True

        def on_fit_end(self, trainer: Any, pl_module: Any) -> None:
            if trainer.is_global_zero:
                self.session.finish()

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            if trainer.is_global_zero:
                self.session.finish(error=f"{type(exception).__name__}: {exception}")

    return TunelabCallback
