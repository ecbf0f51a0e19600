"""Scaling a trial's config (or any config) to another world size."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session

from app.engine.errors import ConfigError
from app.engine.space import param_roles
from app.scaling.roles import RoleAssignment, assign_roles
from app.scaling.rules import ScaleResult, World, scale_config
from app.scaling.schemas import ConfigScaleRequest, ScaleOptions, ScaleRead, WorldSpec
from app.studies import service as studies
from app.studies.models import Study
from app.trials import service as trials


def study_world(study: Study) -> World | None:
    """The world a study runs on, when its tags say so: `tags.world = {nodes, gpus_per_node}`."""
    world = (study.tags or {}).get("world")
    if not isinstance(world, Mapping):
        return None
    nodes, gpus = world.get("nodes"), world.get("gpus_per_node")
    if isinstance(nodes, int) and isinstance(gpus, int) and nodes >= 1 and gpus >= 1:
        return World(nodes, gpus)
    return None


def source_world(options: ScaleOptions, study: Study | None) -> World:
    if options.source is not None:
        return World(options.source.nodes, options.source.gpus_per_node)
    world = study_world(study) if study is not None else None
    if world is None:
        raise ConfigError("from", "give the world the config was tuned on (nodes, gpus_per_node)")
    return world


def to_world(spec: WorldSpec) -> World:
    return World(spec.nodes, spec.gpus_per_node)


def study_roles(study: Study) -> RoleAssignment:
    return assign_roles(param_roles(study.space), list(study.space))


def run(
    config: Mapping[str, Any], roles: RoleAssignment, source: World, options: ScaleOptions
) -> ScaleResult:
    return scale_config(
        config,
        roles,
        source,
        to_world(options.target),
        options.rule,
        per_device_batch=options.per_device_batch,
        warmup=options.warmup,
    )


def to_read(result: ScaleResult, roles: RoleAssignment, **ids: int | None) -> ScaleRead:
    def world(w: World) -> dict[str, int]:
        return {"nodes": w.nodes, "gpus_per_node": w.gpus_per_node, "world_size": w.size}

    return ScaleRead.model_validate(
        {
            **ids,
            "rule": result.rule,
            "source": world(result.source),
            "target": world(result.target),
            "world_factor": result.world_factor,
            "batch_factor": result.batch_factor,
            "lr_factor": result.lr_factor,
            "warmup_factor": result.warmup_factor,
            "roles": roles.roles,
            "roles_inferred": roles.inferred,
            "params": result.params,
            "changes": [c.as_dict() for c in result.changes],
            "steps": [s.as_dict() for s in result.steps],
            "notes": result.notes,
        }
    )


def scale_trial(session: Session, trial_id: int, options: ScaleOptions) -> ScaleRead:
    trial = trials.get_trial(session, trial_id)
    study = studies.get_study(session, trial.study_id)
    roles = study_roles(study)
    result = run(trial.params, roles, source_world(options, study), options)
    _note_out_of_range(study, result)
    return to_read(result, roles, trial_id=trial.id, study_id=study.id)


def scale_params(body: ConfigScaleRequest) -> ScaleRead:
    roles = assign_roles(body.roles, list(body.params))
    result = run(body.params, roles, source_world(body, None), body)
    return to_read(result, roles)


def _note_out_of_range(study: Study, result: ScaleResult) -> None:
    for change in result.changes:
        spec = study.space.get(change.param, {})
        if spec.get("type") in ("float", "int") and not spec["low"] <= change.after <= spec["high"]:
            result.notes.append(
                f"{change.param} = {change.after:.6g} lies outside this study's range "
                f"[{spec['low']:g}, {spec['high']:g}]; promoting the trial moves the range with it"
            )
