"""Parameter importance of a study, cached until the study has more completed trials.

The one source of the numbers: `GET /studies/{id}/importance` and the dashboard's
importance chart (`app.plots`) both call `load` and `run`, so they always agree.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.engine.space import SearchSpace
from app.importance.compute import Importance, Method, compute
from app.importance.repository import ImportanceRepository
from app.importance.schemas import ImportanceRead, ParamImportance
from app.studies.models import Study

CACHE_SIZE = 512

# Per process: a fit takes up to a second or two, and the answer only changes when a
# trial completes (a completed trial's value is final), so the count of completed trials
# is checked against the cached answer's.
Key = tuple[str, int, str, str]
_cache: OrderedDict[Key, tuple[int, Importance]] = OrderedDict()
_lock = threading.Lock()


def _key(session: Session, study: Study, method: str) -> Key:
    """The database, the study (its creation time tells a recreated database's study 1
    from the last one's) and the method."""
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    return (url, study.id, study.created_at.isoformat(), method)


def clear_cache() -> None:
    with _lock:
        _cache.clear()


@dataclass(frozen=True)
class Inputs:
    key: Key
    study_id: int
    method: Method
    space: SearchSpace
    configs: list[dict[str, Any]]
    values: list[float]
    count: int  # completed trials with a value (non-finite ones included): the cache key


def load(session: Session, study: Study, method: Method = "fanova") -> ImportanceRead | Inputs:
    """The cached answer when no trial has completed since, else what `run` needs."""
    repo = ImportanceRepository(session)
    key = _key(session, study, method)
    count = repo.count_completed(study.id)
    with _lock:
        hit = _cache.get(key)
        if hit is not None and hit[0] == count:
            _cache.move_to_end(key)
            return _read(study.id, hit[1], cached=True)
    usable = [(params, value) for params, value in repo.completed(study.id) if math.isfinite(value)]
    return Inputs(
        key,
        study.id,
        method,
        SearchSpace.from_dict(study.space),
        [params for params, _ in usable],
        [value for _, value in usable],
        count,
    )


def run(inputs: Inputs) -> ImportanceRead:
    """Fits the model (up to a second or two) and caches the answer."""
    result = compute(inputs.space, inputs.configs, inputs.values, inputs.method)
    with _lock:
        _cache[inputs.key] = (inputs.count, result)
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
