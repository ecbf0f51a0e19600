"""Promotion: the best trials of a study, scaled to a larger world, queued in a new study."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.core.errors import Conflict
from app.events.repository import EventRepository
from app.followups.common import child_body, ranked_trials, trial_from_parent
from app.followups.schemas import FollowupRead, FollowupTrial, PromoteRequest
from app.scaling import service as scaling
from app.scaling.space import scaled_space
from app.studies import service as studies
from app.studies.settings import study_settings
from app.trials.schemas import TrialCreate


def promote(
    session: Session, study_id: int, body: PromoteRequest, actor: str = "api"
) -> FollowupRead:
    parent = studies.get_study(session, study_id)
    best = ranked_trials(session, parent, body.top_k)
    if not best:
        raise Conflict(
            f"study {parent.id} has no completed trial with a finite value to promote",
            field="top_k",
        )
    roles = scaling.study_roles(parent)
    source = scaling.source_world(body, parent)
    target = scaling.to_world(body.target)
    results = [scaling.run(t.params, roles, source, body) for t in best]
    configs = [{**r.params, **body.overrides} for r in results]
    notes = list(dict.fromkeys(note for r in results for note in r.notes))
    if len(best) < body.top_k:
        notes.append(f"only {len(best)} completed trials to promote (asked for {body.top_k})")

    settings = study_settings(parent)
    fidelity = settings.fidelity.model_dump() if settings.fidelity else None
    strategy = (
        body.strategy.model_dump(exclude_none=True)
        if body.strategy
        else settings.strategy.as_body()
    )
    if fidelity is not None and fidelity["param"] in body.overrides:
        # The fidelity is now set outright (data_fraction=1.0): the new study has none, and a
        # multi-fidelity strategy gives way to the sampler it used.
        notes.append(
            f"{fidelity['param']} is set to {body.overrides[fidelity['param']]!r}: "
            "the new study has no fidelity"
        )
        fidelity = None
        if body.strategy is None and settings.strategy.sampler != settings.strategy.name:
            strategy = settings.strategy.sampler_body()
    space = scaled_space(
        parent.space,
        roles,
        body.rule,
        target.size / source.size,
        configs,
        fixed=body.overrides,
        warmup=body.warmup,
    )
    # Budget and runtime limits were sized for the small runs; the larger ones start free of them.
    limits = {
        **settings.limits.model_dump(),
        "max_trials": body.max_trials or len(configs),
        "max_budget": None,
        "max_runtime_s": None,
    }
    if body.max_parallel_trials is not None:
        limits["max_parallel_trials"] = body.max_parallel_trials
    limits["max_trials"] = max(limits["max_trials"], len(configs))
    entry = {
        "kind": "promoted",
        "parents": [parent.id],
        "trials": [t.id for t in best],
        "rule": body.rule,
        "from": {"nodes": source.nodes, "gpus_per_node": source.gpus_per_node},
        "to": {"nodes": target.nodes, "gpus_per_node": target.gpus_per_node},
        "overrides": body.overrides,
    }
    name = body.name or f"{parent.name} @ {target.nodes}x{target.gpus_per_node} (top {len(best)})"
    new_body = child_body(
        parent,
        name=name,
        space=space,
        strategy={k: v for k, v in strategy.items() if v is not None},
        limits=limits,
        fidelity=fidelity,
        tags={**body.tags, "world": entry["to"], "lineage": [entry]},
    )
    child = studies.create_study(session, new_body, actor)
    out: list[FollowupTrial] = []
    for source_trial, config, result in zip(best, configs, results, strict=True):
        out.append(
            trial_from_parent(
                session,
                child.id,
                TrialCreate(params=config, queue=True),
                actor,
                parent=parent,
                source=source_trial,
                link="promoted_from",
                changes=[c.as_dict() for c in result.changes],
                steps=[s.as_dict() for s in result.steps],
            )
        )
    EventRepository(session).record(
        study_id=parent.id,
        kind="study",
        actor=actor,
        reason=f"top {len(best)} promoted to study {child.id}",
        data={"child_study_id": child.id},
    )
    session.flush()
    return FollowupRead(
        study=studies.read_study(session, child), kind="promoted", trials=out, notes=notes
    )
