"""Parameter importance of a study, cached until the study has more finished trials."""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.engine.base import TrialState
from app.engine.space import SearchSpace
from app.importance.compute import Importance, Method, compute
from app.importance.schemas import ImportanceRead, ParamImportance
from app.studies import service as studies
from app.trials.repository import TrialRepository

CACHE_SIZE = 512

# Per process: a forest over a few hundred trials takes seconds, and the answer only
# changes when a trial finishes, so the count of finished trials is the cache key.
_cache: OrderedDict[tuple[str, int, str], tuple[int, Importance]] = OrderedDict()
_lock = threading.Lock()


def _key(session: Session, study_id: int, method: str) -> tuple[str, int, str]:
    url = session.get_bind().engine.url
    return (url.render_as_string(hide_password=True), study_id, method)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


@dataclass(frozen=True)
class Inputs:
    key: tuple[str, int, str]
    study_id: int
    method: Method
    space: SearchSpace
    configs: list[dict[str, Any]]
    values: list[float]


def load(session: Session, study_id: int, method: Method = "fanova") -> ImportanceRead | Inputs:
    """The cached answer when no trial has completed since, else what `compute` needs."""
    study = studies.get_study(session, study_id)
    finished = TrialRepository(session).in_states(study.id, [TrialState.COMPLETED])
    usable = [t for t in finished if t.value is not None and math.isfinite(t.value)]
    key = _key(session, study.id, method)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == len(usable):
            _cache.move_to_end(key)
            return _read(study.id, hit[1], cached=True)
    return Inputs(
        key,
        study.id,
        method,
        SearchSpace.from_dict(study.space),
        [dict(t.params) for t in usable],
        [float(t.value or 0.0) for t in usable],
    )


def run(inputs: Inputs) -> ImportanceRead:
    """Fits the model (seconds for a large study) and caches the answer."""
    result = compute(inputs.space, inputs.configs, inputs.values, inputs.method)
    with _lock:
        _cache[inputs.key] = (len(inputs.configs), result)
        _cache.move_to_end(inputs.key)
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
    return _read(inputs.study_id, result, cached=False)


def _read(study_id: int, result: Importance, cached: bool) -> ImportanceRead:
    return ImportanceRead(
        study_id=study_id,
        method=result.method,
        n_trials=result.n_trials,
        params=[ParamImportance(param=k, importance=v) for k, v in result.params.items()],
        cached=cached,
        note=result.note,
    )
