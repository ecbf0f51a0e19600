"""Reusing finished studies: warm starts (observations or first configs) and extensions."""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from app.core.errors import Gone, Invalid
from app.engine.base import TrialState
from app.engine.space import CategoricalParam, FixedParam, SearchSpace, SpaceError
from app.events.repository import EventRepository
from app.followups.common import (
    add_lineage,
    child_body,
    ranked_trials,
    trial_from_parent,
)
from app.followups.schemas import ExtendRequest, FollowupRead, FollowupTrial, WarmStartRequest
from app.studies import service as studies
from app.studies.models import Study, StudyState
from app.studies.repository import StudyRepository
from app.studies.schemas import Limits, StudyUpdate
from app.studies.settings import study_settings
from app.trials.models import Trial
from app.trials.repository import TrialRepository
from app.trials.schemas import TrialCreate


def _fit(config: dict[str, Any], space: SearchSpace) -> tuple[dict[str, Any], list[str]]:
    """A parent's config moved into another space: values kept where they fit, clipped to
    the range, or the middle of the range where the parameter is new."""
    fitted: dict[str, Any] = {}
    changed: list[str] = []
    for param in space:
        if isinstance(param, FixedParam):
            fitted[param.name] = param.value
            continue
        value = config.get(param.name)
        try:
            fitted[param.name] = param.validate(value, param.name)
            continue
        except SpaceError:
            pass
        if isinstance(param, CategoricalParam) or value is None or isinstance(value, bool | str):
            fitted[param.name] = param.from_unit(0.5)
            changed.append(f"{param.name}: {value!r} -> {fitted[param.name]!r}")
        else:
            clipped = min(param.high, max(param.low, float(value)))
            fitted[param.name] = param.quantize(clipped)
            changed.append(f"{param.name}: {value!r} -> {fitted[param.name]!r}")
    if space.conditional:
        # A conditional space: keep only what the fitted parents make active.
        active = space.active(fitted)
        return active, [note for note in changed if note.split(":", 1)[0] in active]
    return fitted, changed


def warm_start(
    session: Session, study_id: int, body: WarmStartRequest, actor: str = "api"
) -> FollowupRead:
    study = studies.get_study_for_update(session, study_id)
    if StudyState(study.state).is_finished:
        raise Gone(f"the study is {study.state}: {study.state_reason}", field="state")
    space = SearchSpace.from_dict(study.space)
    parents: list[Study] = []
    for position, parent_id in enumerate(dict.fromkeys(body.parents)):
        if parent_id == study.id:
            raise Invalid("a study cannot warm-start from itself", field=f"parents.{position}")
        parent = StudyRepository(session).get(parent_id)
        if parent is None:
            raise Invalid(f"study {parent_id} not found", field=f"parents.{position}")
        if body.mode == "same_data" and (parent.metric, parent.direction) != (
            study.metric,
            study.direction,
        ):
            raise Invalid(
                f"study {parent_id} optimizes {parent.metric} ({parent.direction}); same_data needs "
                f"the same objective, use mode transfer",
                field="mode",
            )
        parents.append(parent)

    if body.mode == "same_data":
        return _import_observations(session, study, space, parents, actor)
    out: list[FollowupTrial] = []
    notes: list[str] = []
    for parent in parents:
        for source in ranked_trials(session, parent, body.top_k):
            config, changed = _fit(dict(source.params), space)
            if changed:
                notes.append(
                    f"trial {source.id} of study {parent.id} adjusted to this space: {'; '.join(changed)}"
                )
            out.append(
                trial_from_parent(
                    session,
                    study.id,
                    TrialCreate(params=config, queue=True),
                    actor,
                    parent=parent,
                    source=source,
                    link="transferred_from",
                )
            )
    _finish_warm_start(session, study, parents, "transfer", len(out))
    return FollowupRead(
        study=studies.read_study(session, study), kind="warm_start", trials=out, notes=notes
    )


def _import_observations(
    session: Session, study: Study, space: SearchSpace, parents: list[Study], actor: str
) -> FollowupRead:
    found: list[tuple[Study, Trial, dict[str, Any]]] = []
    skipped = 0
    for parent in parents:
        for source in TrialRepository(session).in_states(
            parent.id, [TrialState.COMPLETED, TrialState.FAILED]
        ):
            if source.state == TrialState.COMPLETED and (
                source.value is None or not math.isfinite(source.value)
            ):
                skipped += 1
                continue
            try:
                found.append((parent, source, space.validate(source.params)))
            except SpaceError:
                skipped += 1
    notes = (
        [f"{skipped} finished trials of the parents do not fit this space and were left out"]
        if skipped
        else []
    )
    if found:
        # Observations are not new trials: they must not use up max_trials.
        max_trials = study_settings(study).limits.max_trials + len(found)
        study.limits = {**study.limits, "max_trials": max_trials}
        notes.append(
            f"max_trials raised by {len(found)} to {max_trials} for the imported observations"
        )
        session.flush()
    out: list[FollowupTrial] = []
    for parent, source, params in found:
        if source.state == TrialState.COMPLETED:
            request = TrialCreate(params=params, state="completed", value=source.value)
        else:
            request = TrialCreate(params=params, state="failed")
        out.append(
            trial_from_parent(
                session,
                study.id,
                request,
                actor,
                parent=parent,
                source=source,
                link="imported_from",
            )
        )
    _finish_warm_start(session, study, parents, "same_data", len(out))
    return FollowupRead(
        study=studies.read_study(session, study),
        kind="warm_start",
        trials=out,
        skipped=skipped,
        notes=notes,
    )


def _finish_warm_start(
    session: Session, study: Study, parents: list[Study], mode: str, count: int
) -> None:
    add_lineage(
        study,
        {"kind": "warm_start", "mode": mode, "parents": [p.id for p in parents], "trials": count},
    )
    if study.parent_study_id is None and parents:
        study.parent_study_id = parents[0].id
    EventRepository(session).record(
        study_id=study.id,
        kind="study",
        actor="api",
        reason=f"warm start ({mode}) from studies {', '.join(str(p.id) for p in parents)}: {count} trials",
    )
    session.flush()


def _extended_limits(parent: Study, more_trials: int) -> Limits:
    """The parent's limits with `more_trials` added to max_trials (or to the trials it
    already has, when that is more); a 422 on `more_trials` past what a study may hold."""
    limits = study_settings(parent).limits
    max_trials = max(limits.max_trials, parent.next_number) + more_trials
    try:
        return Limits.model_validate({**limits.model_dump(), "max_trials": max_trials})
    except ValidationError as error:
        detail = error.errors()[0]["msg"]
        raise Invalid(
            f"max_trials would become {max_trials}: {detail}", field="more_trials"
        ) from None


def extend(
    session: Session, study_id: int, body: ExtendRequest, actor: str = "api"
) -> FollowupRead:
    parent = studies.get_study_for_update(session, study_id)
    if body.space is None:
        limits = _extended_limits(parent, body.more_trials)
        # Asking for more trials outweighs the patience that ended the study.
        parent.trials_since_improvement = 0
        add_lineage(parent, {"kind": "extended", "more_trials": body.more_trials})
        session.flush()
        study = studies.update_study(
            session,
            parent.id,
            StudyUpdate(
                limits=limits,
                # Reopens a finished study; a paused one stays paused.
                state="running" if StudyState(parent.state).is_finished else None,
            ),
            actor,
        )
        notes = (
            [f"the study ended again: {study.state_reason}"]
            if StudyState(study.state).is_finished
            else []
        )
        return FollowupRead(
            study=studies.read_study(session, study), kind="extended", trials=[], notes=notes
        )

    entry = {
        "kind": "extended",
        "parents": [parent.id],
        "more_trials": body.more_trials,
        "narrowed": True,
    }
    tags = {"lineage": [entry]}
    if isinstance((parent.tags or {}).get("world"), dict):
        tags["world"] = parent.tags["world"]
    new_body = child_body(
        parent,
        name=body.name or f"{parent.name} (narrowed)",
        space=body.space,
        tags=tags,
        limits={**study_settings(parent).limits.model_dump(), "max_trials": body.more_trials},
    )
    child = studies.create_study(session, new_body, actor)
    imported = _import_observations(
        session, child, SearchSpace.from_dict(child.space), [parent], actor
    )
    return FollowupRead(
        study=studies.read_study(session, child),
        kind="extended",
        trials=imported.trials,
        skipped=imported.skipped,
        notes=imported.notes,
    )
