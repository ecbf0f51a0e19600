"""Adapts the repositories to the engine's read-only `History`, and builds a study's strategy."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from app.engine import registry
from app.engine.base import Fidelity, StudyContext, TrialRecord, TrialState
from app.engine.space import SearchSpace
from app.metrics.repository import MetricRepository
from app.studies.models import Study
from app.trials.models import Trial
from app.trials.repository import TrialRepository


def study_context(study: Study) -> StudyContext:
    options = {k: v for k, v in study.strategy.items() if k not in ("name", "seed")}
    fidelity = Fidelity(**study.fidelity) if study.fidelity else None
    return StudyContext(
        space=SearchSpace.from_dict(study.space),
        direction=study.direction,  # type: ignore[arg-type]
        metric=study.metric,
        seed=study.seed,
        options=options,
        fidelity=fidelity,
        max_trials=int(study.limits.get("max_trials", 0)) or None,
    )


def strategy_for(study: Study) -> registry.Strategy:
    return registry.build(study.strategy, study.early_stopping, study_context(study))


def to_record(trial: Trial, intermediate: dict[float, float] | None = None) -> TrialRecord:
    return TrialRecord(
        id=trial.id,
        number=trial.number,
        params=trial.params,
        state=TrialState(trial.state),
        value=trial.value,
        budget=trial.budget,
        rung=trial.rung,
        intermediate=intermediate or {},
        extra=trial.extra or {},
    )


class DbHistory:
    """Loads the study's trials once, on first use; random and Sobol never load them."""

    def __init__(
        self,
        session: Session,
        study: Study,
        with_intermediate: bool,
        intermediate_for: int | None = None,
    ) -> None:
        self.session = session
        self.study = study
        self.with_intermediate = with_intermediate
        # One trial whose curve is loaded even without `with_intermediate`: the one that
        # just reported, for schedulers that keep the other trials' results in `extra`.
        self.intermediate_for = intermediate_for
        self._records: list[TrialRecord] | None = None

    def count(self) -> int:
        return self.study.next_number

    def trials(self, states: Sequence[TrialState] | None = None) -> Sequence[TrialRecord]:
        if self._records is None:
            trials = TrialRepository(self.session).all_for_study(self.study.id)
            curves: dict[int, dict[float, float]] = {}
            if self.with_intermediate:
                curves = MetricRepository(self.session).series_for_trials(
                    [t.id for t in trials], self.study.metric
                )
            elif self.intermediate_for is not None:
                curves = MetricRepository(self.session).series_for_trials(
                    [self.intermediate_for], self.study.metric
                )
            self._records = [to_record(t, curves.get(t.id)) for t in trials]
        if states is None:
            return self._records
        wanted = set(states)
        return [r for r in self._records if r.state in wanted]

    def replace(self, record: TrialRecord) -> None:
        """Keeps the cache in step after the service changed a trial in this transaction."""
        if self._records is not None:
            self._records = [record if r.id == record.id else r for r in self._records]
