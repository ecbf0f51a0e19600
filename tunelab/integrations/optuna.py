"""An Optuna study as a plain JSON document that a Tunelab server imports
(`POST /studies/import/optuna`, `Client.import_optuna`, `tunelab import optuna`).

Only `load` imports Optuna (to open a storage); `study_document` reads any object shaped
like an `optuna.Study`, so the document is built wherever the study can be opened, and the
server that imports it needs no Optuna at all. Distributions become Tunelab parameter
specs here, per trial; the server merges them into one search space.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

FORMAT = "optuna-study"
VERSION = 1


def load(storage: str, study_name: str) -> dict[str, Any]:
    """The document of the study `study_name` in an Optuna storage URL (`sqlite:///x.db`,
    `postgresql://...`, a journal file path ending in `.log`)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if storage.endswith(".log") and "://" not in storage:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        study = optuna.load_study(
            study_name=study_name, storage=JournalStorage(JournalFileBackend(storage))
        )
    else:
        study = optuna.load_study(study_name=study_name, storage=storage)
    return study_document(study)


def study_document(study: Any) -> dict[str, Any]:
    """The document of an `optuna.Study` (or anything with its attributes)."""
    directions = [_name(d).lower() for d in study.directions]
    metric_names = getattr(study, "metric_names", None)
    return {
        "format": FORMAT,
        "version": VERSION,
        "study_name": str(study.study_name),
        "directions": directions,
        "metric_names": list(metric_names) if metric_names else None,
        "user_attrs": dict(study.user_attrs),
        "trials": [trial_document(t) for t in study.get_trials(deepcopy=False)],
    }


def trial_document(trial: Any) -> dict[str, Any]:
    """One `FrozenTrial`: its state (COMPLETE, PRUNED, FAIL, RUNNING, WAITING), params,
    their distributions as Tunelab specs, values, intermediate values and user attrs."""
    return {
        "number": int(trial.number),
        "state": _name(trial.state),
        "params": dict(trial.params),
        "distributions": {
            name: param_spec(distribution) for name, distribution in trial.distributions.items()
        },
        "values": None if trial.values is None else [float(v) for v in trial.values],
        # [step, value] pairs: JSON object keys would turn the steps into strings.
        "intermediate_values": [
            [int(step), float(value)] for step, value in sorted(trial.intermediate_values.items())
        ],
        "user_attrs": dict(trial.user_attrs),
        "fail_reason": (trial.system_attrs or {}).get("fail_reason"),
        "datetime_start": _iso(trial.datetime_start),
        "datetime_complete": _iso(trial.datetime_complete),
    }


def param_spec(distribution: Any) -> dict[str, Any]:
    """A Tunelab parameter spec for an Optuna distribution (also the pre-3.0 classes,
    read by the attributes they share with the current ones)."""
    kind = type(distribution).__name__
    if kind == "CategoricalDistribution":
        return {"type": "categorical", "choices": list(distribution.choices)}
    low, high = distribution.low, distribution.high
    log = bool(getattr(distribution, "log", False)) or kind.startswith(("LogUniform", "IntLog"))
    step = getattr(distribution, "step", None) or getattr(distribution, "q", None)
    integral = kind.startswith("Int")
    if low == high:
        return {"type": "fixed", "value": int(low) if integral else float(low)}
    spec: dict[str, Any] = {
        "type": "int" if integral else "float",
        "low": int(low) if integral else float(low),
        "high": int(high) if integral else float(high),
        "scale": "log" if log else "linear",
    }
    if step is not None and not (integral and step == 1):
        spec["step"] = int(step) if integral else float(step)
    return spec


def _name(value: Any) -> str:
    return str(getattr(value, "name", value))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def is_document(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("format") == FORMAT
