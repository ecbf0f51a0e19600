"""What every framework callback shares: finding its trial, reporting, and the checkpoint
folder a paused trial saves into and a resumed one loads from.

Inside a process Tunelab launched for a trial (the runner sets TUNELAB_TRIAL_ID and
TUNELAB_API_URL), the callback reports to that trial, and the runner tells the result
when the process exits. Anywhere else it asks the study (`study=` or TUNELAB_STUDY_ID)
for a trial, on the server at `url=` (or TUNELAB_URL), and tells the result itself when
training ends. Standard library only, like the rest of the `tunelab` package.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

CONTINUE, STOP, PAUSE = "continue", "stop", "pause"


class TrialSession:
    """The trial a callback reports to, and what the study decided for it."""

    def __init__(
        self,
        study: int | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
        metrics: list[str] | tuple[str, ...] | None = None,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        self.metrics = tuple(metrics) if metrics else None
        self.decision = CONTINUE
        self.reason = ""
        self.finished = False
        self._trial: Any = None  # tunelab.client.Trial, outside a launched process
        self._client: Any = None
        trial_id = os.environ.get("TUNELAB_TRIAL_ID")
        if trial_id and os.environ.get("TUNELAB_API_URL"):
            # Launched by Tunelab: the runner passed everything in the environment.
            self.launched = True
            self.trial_id = int(trial_id)
            self.params: dict[str, Any] = json.loads(os.environ.get("TUNELAB_PARAMS") or "{}")
            budget = os.environ.get("TUNELAB_BUDGET")
            self.budget = float(budget) if budget else None
            folder = checkpoint_dir or os.environ.get("TUNELAB_CHECKPOINT_DIR")
            self.resumed = bool(folder) and _has_files(Path(str(folder)))
        else:
            self.launched = False
            study_id = study if study is not None else os.environ.get("TUNELAB_STUDY_ID")
            if study_id is None:
                raise ValueError(
                    "not in a trial Tunelab launched (no TUNELAB_TRIAL_ID): give the study "
                    "to ask a trial of, TunelabCallback(study=ID), or set TUNELAB_STUDY_ID"
                )
            from tunelab.client import Client

            self._client = Client(url, token)
            self._trial = self._client.study(int(study_id)).ask(wait_s=60.0)
            self.trial_id = self._trial.id
            self.params = self._trial.params
            self.budget = self._trial.budget
            self.resumed = bool(self._trial.data.get("resume"))
            folder = checkpoint_dir or _local_checkpoints(self._trial.study_id, self._trial.number)
        self.checkpoint_dir = Path(str(folder)) if folder else None
        if self.checkpoint_dir is not None:
            self.checkpoint_dir.mkdir(parents=True, exist_ok=True)

    @property
    def should_stop(self) -> bool:
        """Stop or pause: training should end now (after saving a checkpoint on pause)."""
        return self.decision in (STOP, PAUSE)

    @property
    def should_pause(self) -> bool:
        return self.decision == PAUSE

    def report(self, step: float, values: Mapping[str, Any]) -> str:
        """Sends the numeric `values` (those named in `metrics`, if given) at `step`;
        returns the study's decision (continue, stop or pause) and keeps it."""
        points: dict[str, float] = {}
        for name, value in values.items():
            number = as_number(value)
            if number is not None and (self.metrics is None or name in self.metrics):
                points[str(name)] = number
        if not points or self.finished:
            return self.decision
        if self.launched:
            from tunelab.sdk import report

            answer = report(step=step, **points)
            self.decision, self.reason = answer.decision, answer.reason
        else:
            self.decision = self._trial.report(step, points)
            self.reason = self._trial.last_reason
        return self.decision

    def finish(self, error: str | None = None) -> None:
        """Outside a launched process, tells the result once: failed with `error`, or
        completed with the value the server takes from the reported points. A trial the
        study already stopped or paused keeps that verdict. Inside one, the runner does
        this when the process exits."""
        if self.finished or self.launched:
            self.finished = True
            return
        self.finished = True
        from tunelab.transport import TunelabError

        try:
            if error is not None:
                self._trial.fail(error)
            else:
                try:
                    self._trial.complete()
                except TunelabError as exc:
                    if exc.status_code != 422:
                        raise
                    # No point of the objective metric was reported: the run is over, so
                    # the trial fails with the server's reason rather than the script.
                    self._trial.fail(exc.detail)
                    warnings.warn(
                        f"tunelab: trial {self.trial_id} failed: {exc.detail}", stacklevel=2
                    )
        finally:
            self._client.close()

    def checkpoint_path(self, name: str) -> Path | None:
        return None if self.checkpoint_dir is None else self.checkpoint_dir / name

    def saved_state(self) -> dict[str, Any]:
        """What `save_state` wrote with the last checkpoint (the epoch it ended), if any."""
        path = self.checkpoint_path(STATE_FILE)
        if path is None or not path.exists():
            return {}
        return dict(json.loads(path.read_text()))

    def save_state(self, **state: Any) -> None:
        path = self.checkpoint_path(STATE_FILE)
        if path is not None:
            path.write_text(json.dumps(state))


def lazy_class(name: str, build: Callable[[], type]) -> Callable[[str], Any]:
    """A module's `__getattr__` that makes the class `name` on first access: a callback
    class derives from its framework's, so the framework is imported only then, never by
    `import tunelab`."""
    built: list[type] = []

    def module_getattr(attribute: str) -> Any:
        if attribute != name:
            raise AttributeError(attribute)
        if not built:
            built.append(build())
        return built[0]

    return module_getattr


class SessionView:
    """What every framework's callback tells of its trial, read from its `TrialSession`."""

    session: TrialSession

    @property
    def params(self) -> dict[str, Any]:
        return self.session.params

    @property
    def budget(self) -> float | None:
        return self.session.budget

    @property
    def trial_id(self) -> int:
        return self.session.trial_id

    @property
    def decision(self) -> str:
        return self.session.decision


STATE_FILE = "tunelab-state.json"


def step_kind(step: str) -> str:
    """What a callback counts its steps in: "epoch" or "global_step"."""
    if step not in ("epoch", "global_step"):
        raise ValueError("step is 'epoch' or 'global_step'")
    return step


def as_number(value: Any) -> float | None:
    """A Python or numpy number, or a tensor or array of one element, as a float; None
    for anything else (text, a whole tensor)."""
    if value is None or isinstance(value, bool | str):
        return None
    try:
        numel = getattr(value, "numel", None)  # a torch tensor
        if callable(numel) and numel() != 1:
            return None
        size = getattr(value, "size", None)  # a numpy array or scalar
        if isinstance(size, int) and size != 1:
            return None
        return float(value)
    except (TypeError, ValueError):
        return None


def _has_files(folder: Path) -> bool:
    return folder.is_dir() and any(folder.iterdir())


def _local_checkpoints(study_id: int, number: int) -> Path:
    """The folder a worker would give the trial (worker/launch.py): a resumed trial asked
    on the same machine finds its checkpoint again."""
    root = os.environ.get("TUNELAB_CHECKPOINT_ROOT")
    if root:
        base = Path(root)
    else:
        data = os.environ.get("TUNELAB_DATA_DIR")
        base = (Path(data) if data else Path.home() / ".tunelab") / "checkpoints"
    return base / f"study-{study_id}" / f"trial-{number}"
