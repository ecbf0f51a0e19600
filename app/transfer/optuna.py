"""Import of an Optuna study: its trials, parameters, values, states, intermediate values
and user attributes become a Tunelab study that any strategy continues (warm start: the
strategy's history starts with the imported trials).

The document comes from `tunelab.integrations.optuna` (the CLI and the client build it
where the Optuna storage can be opened); this module needs no Optuna. The search space
is inferred from the trials' distributions: a parameter whose range changed between
trials gets the union of its ranges, a categorical the union of its choices. Every trial
is created and ended through the trial lifecycle, as an imported result would be:

| Optuna      | Tunelab   | value                                                  |
|-------------|-----------|--------------------------------------------------------|
| COMPLETE    | completed | its value(s)                                           |
| PRUNED      | stopped   | its last intermediate value, as a scheduler's stop     |
| FAIL        | failed    | none; the error is Optuna's fail reason where it kept one |
| RUNNING, WAITING | not imported (counted in the result's `skipped`)         |

Intermediate values become points of the first objective's metric at their step. The
trial's Optuna number, user attributes and times are kept in its `extra["optuna"]`;
the study's name and user attributes in its tags (`tags["optuna"]`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from app.core.errors import Invalid
from app.engine import lifecycle as rules
from app.engine.base import Action, Decision, TrialState
from app.engine.errors import ConfigError
from app.engine.space import SearchSpace
from app.metrics.repository import MetricRepository
from app.studies import service as studies
from app.studies.models import Study
from app.studies.schemas import StudyCreate
from app.transfer.schemas import OptunaImport, OptunaTrial
from app.trials import lifecycle, results

ACTOR = "optuna-import"
DEFAULT_STRATEGY = "tpe"
# Optuna states that have ended, and the Tunelab state each becomes.
ENDED = {
    "COMPLETE": TrialState.COMPLETED,
    "PRUNED": TrialState.STOPPED,
    "FAIL": TrialState.FAILED,
}


def import_optuna(session: Session, body: OptunaImport, project_id: int | None = None) -> Study:
    """Creates the study (flushed, not committed); `study.tags["optuna"]["imported"]`
    counts the trials brought in and those skipped (still running or waiting)."""
    document = body.study
    ended = sorted((t for t in document.trials if t.state in ENDED), key=lambda t: t.number)
    space = infer_space(document.trials)
    if not space:
        raise Invalid("the Optuna study has no parameters to import", field="study.trials")
    metrics = metric_names(document.metric_names, len(document.directions))
    objectives = [
        {"metric": metric, "direction": direction}
        for metric, direction in zip(metrics, document.directions, strict=True)
    ]
    strategy = (
        body.strategy.model_dump(exclude_none=True)
        if body.strategy is not None
        else {"name": DEFAULT_STRATEGY}
    )
    create: dict[str, Any] = {
        "name": body.name or document.study_name[:200] or "optuna study",
        "objective": objectives[0],
        "space": space,
        "strategy": strategy,
        "limits": {
            # The imported trials count against max_trials: leave room for `more_trials`.
            "max_trials": max(1, len(ended) + body.more_trials),
            "max_parallel_trials": body.max_parallel_trials,
        },
        "tags": {
            "optuna": {
                "study_name": document.study_name,
                "user_attrs": document.user_attrs,
                "imported": {
                    "trials": len(ended),
                    "skipped": len(document.trials) - len(ended),
                },
            }
        },
    }
    if len(objectives) > 1:
        create["objectives"] = objectives
    try:
        study = studies.create_study(session, StudyCreate.model_validate(create), ACTOR, project_id)
    except ConfigError as exc:
        # The inferred space or the chosen strategy: name where it came from.
        raise Invalid(exc.detail, field=_where(exc.field)) from exc
    for trial in ended:
        index = document.trials.index(trial)
        _import_trial(session, study, trial, space, metrics, f"study.trials.{index}")
    # Neither max_trials (room was left) nor a target is met by the import alone, unless
    # the imported trials reached the target: then the study ends here, as it would have.
    studies.refresh_state(session, study)
    session.flush()  # the caller reads the trial counts with a query
    return study


def _where(field: str) -> str:
    if field.startswith(("space", "strategy")):
        return field if field.startswith("strategy") else f"study.{field}"
    return field


def metric_names(names: list[str] | None, count: int) -> list[str]:
    """Optuna's metric names (`study.set_metric_names`), else `value` (`value_0`, ...)."""
    if names:
        if len(names) != count:
            raise Invalid(
                f"{len(names)} metric names for {count} directions", field="study.metric_names"
            )
        return list(names)
    return ["value"] if count == 1 else [f"value_{k}" for k in range(count)]


def infer_space(trials: list[OptunaTrial]) -> dict[str, dict[str, Any]]:
    """One Tunelab space covering every trial's distributions (in order of first use)."""
    space: dict[str, dict[str, Any]] = {}
    for index, trial in enumerate(trials):
        missing = set(trial.params) - set(trial.distributions)
        if missing:
            name = sorted(missing)[0]
            raise Invalid(
                "a parameter without its distribution",
                field=f"study.trials.{index}.distributions.{name}",
            )
        for name, spec in trial.distributions.items():
            where = f"study.trials.{index}.distributions.{name}"
            _check_spec(name, spec, f"study.trials.{index}.distributions")
            space[name] = merge_specs(space[name], spec, where) if name in space else dict(spec)
    return space


def _check_spec(name: str, spec: Mapping[str, Any], where: str) -> None:
    try:
        SearchSpace.from_dict({name: dict(spec)}, where)
    except ConfigError as exc:
        raise Invalid(exc.detail, field=exc.field) from exc


def merge_specs(old: dict[str, Any], new: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The smallest spec holding both (Optuna lets a range change between trials)."""
    kinds = {old["type"], new["type"]}
    if kinds == {"fixed"}:
        if _same(old["value"], new["value"]):
            return old
        values = [old["value"], new["value"]]
        if all(_number(v) for v in values):
            integral = all(isinstance(v, int) for v in values)
            return {
                "type": "int" if integral else "float",
                "low": min(values),
                "high": max(values),
                "scale": "linear",
            }
        return {"type": "categorical", "choices": values}
    if "fixed" in kinds:
        fixed, ranged = (old, new) if old["type"] == "fixed" else (new, old)
        if ranged["type"] == "categorical":
            return merge_specs(
                dict(ranged), {"type": "categorical", "choices": [fixed["value"]]}, where
            )
        if not _number(fixed["value"]):
            raise Invalid(
                f"is {ranged['type']} in one trial and {fixed['value']!r} in another", where
            )
        value = fixed["value"]
        return {**ranged, "low": min(ranged["low"], value), "high": max(ranged["high"], value)}
    if len(kinds) > 1:
        raise Invalid(
            f"is {old['type']} in one trial and {new['type']} in another: Tunelab gives a "
            "parameter one type",
            field=where,
        )
    if old["type"] == "categorical":
        choices = list(old["choices"])
        for choice in new["choices"]:
            if not any(_same(choice, c) for c in choices):
                choices.append(choice)
        return {**old, "choices": choices}
    merged = {
        **old,
        "low": min(old["low"], new["low"]),
        "high": max(old["high"], new["high"]),
        "scale": old.get("scale", "linear")
        if old.get("scale", "linear") == new.get("scale", "linear")
        else "linear",
    }
    # A step keeps its grid only while both ranges share it.
    if old.get("step") != new.get("step") or old["low"] != new["low"]:
        merged.pop("step", None)
    return merged


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same kind: the choice 1 is not the choice True."""
    return type(a) is type(b) and a == b


def _import_trial(
    session: Session,
    study: Study,
    trial_doc: OptunaTrial,
    space: dict[str, dict[str, Any]],
    metrics: list[str],
    where: str,
) -> None:
    state = ENDED[trial_doc.state]
    params = _params(trial_doc, space, where)
    extra = {
        "optuna": {
            "number": trial_doc.number,
            "state": trial_doc.state,
            "user_attrs": trial_doc.user_attrs,
            "datetime_start": trial_doc.datetime_start,
            "datetime_complete": trial_doc.datetime_complete,
        }
    }
    values = trial_doc.values
    if state == TrialState.COMPLETED and (values is None or len(values) != len(metrics)):
        raise Invalid(
            f"a completed trial needs {len(metrics)} value(s), one per direction",
            field=f"{where}.values",
        )
    created = rules.create(params, source="imported", budget=None, worker=ACTOR, extra=extra)
    trial = lifecycle.insert(session, study, params, created, ACTOR, "imported")
    curve = {float(step): value for step, value in trial_doc.intermediate_values}
    MetricRepository(session).insert_points(
        trial.id, [(metrics[0], step, value) for step, value in curve.items()]
    )
    if state == TrialState.COMPLETED:
        assert values is not None
        value, more = results.of_trial(
            session, study, trial.id, values[0], values if len(values) > 1 else None
        )
        change = rules.imported(trial, TrialState.COMPLETED, value, more)
    elif state == TrialState.FAILED:
        reason = trial_doc.fail_reason or "failed in Optuna"
        trial.error = reason
        change = rules.fail(trial, reason)
    else:
        # Pruned: what a scheduler's stop does, with the value of the curve.
        change = rules.decide(
            trial,
            Decision(Action.STOP, "pruned in Optuna"),
            curve=curve,
            aggregate=study.aggregate,
            direction=study.direction,
        )
    lifecycle.apply(session, study, trial, change, ACTOR)
    # The trial ran when Optuna ran it: the timeline and "by time" views keep its times
    # (the import's time stands where Optuna kept none).
    started = _moment(trial_doc.datetime_start, f"{where}.datetime_start")
    finished = _moment(trial_doc.datetime_complete, f"{where}.datetime_complete")
    if started is not None:
        trial.started_at = started
    if finished is not None and (started is None or finished >= started):
        trial.finished_at = finished


def _moment(value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise Invalid(f"{value!r} is not an ISO 8601 time", field=where) from exc
    # Optuna's times carry no zone (the clock of the machine that ran the trial): read
    # as UTC, as Tunelab keeps its own.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _params(trial_doc: OptunaTrial, space: dict[str, dict[str, Any]], where: str) -> dict[str, Any]:
    """The trial's params, checked against the inferred space. A param the trial did not
    use (Optuna's spaces may change from trial to trial) stays absent: inactive."""
    present = {name: space[name] for name in trial_doc.params}
    try:
        return dict(SearchSpace.from_dict(present).validate(trial_doc.params, f"{where}.params"))
    except ConfigError as exc:
        raise Invalid(exc.detail, field=exc.field) from exc
