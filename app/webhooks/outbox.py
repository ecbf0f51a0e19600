"""The outbox: events become delivery rows in the transaction of the change that causes
them, so that a crash or an outage between the change and the POST loses nothing (the
dispatcher sends what is committed, `app/webhooks/dispatcher.py`).

Called from the hot paths (`app/trials/lifecycle.apply`, `studies.service.finish_study`,
the heartbeat sweeps). They cost nothing unless an event fires (a new best value, a trial
failed for good, a study's end, a lost worker: at most once per trial, never per metric
point); then one indexed query finds the webhooks that hear it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from app.core.notify import notify
from app.db.types import utcnow
from app.engine.base import TrialState
from app.engine.lifecycle import Change
from app.studies.models import Study, StudyState
from app.trials.models import Trial
from app.webhooks.formats import json_safe, number
from app.webhooks.models import DeliveryState, Webhook, WebhookDelivery
from app.webhooks.repository import DeliveryRepository, WebhookRepository
from app.webhooks.schemas import (
    NEW_BEST,
    PING,
    STUDY_FINISHED,
    TARGET_REACHED,
    TRIAL_FAILED,
    WORKER_LOST,
)

# The notify kind that wakes the dispatcher after the commit.
WAKE_KIND = "webhook"
# Results that arrive in bulk (an import) tell no one.
QUIET_SOURCES = frozenset({"imported"})


def study_ref(study: Study) -> dict[str, Any]:
    return {"id": study.id, "name": study.name, "direction": study.direction, "state": study.state}


def trial_ref(trial: Trial) -> dict[str, Any]:
    return {
        "id": trial.id,
        "number": trial.number,
        "state": trial.state,
        "value": trial.value,
        "params": dict(trial.params or {}),
    }


def payload(
    event: str,
    study: Study | None,
    trial: Trial | None,
    data: Mapping[str, Any],
    text: str,
) -> dict[str, Any]:
    """The body of the contract without its "id" (the delivery's, set when sent); NaN and
    infinities as strings (a JSON column of PostgreSQL refuses them)."""
    return json_safe(
        {
            "event": event,
            "at": utcnow().isoformat(),
            "study": study_ref(study) if study is not None else None,
            "trial": trial_ref(trial) if trial is not None else None,
            "data": dict(data),
            "text": text,
        }
    )


def delivery(
    webhook_id: int, event: str, body: dict[str, Any], study_id: int | None, trial_id: int | None
) -> WebhookDelivery:
    now = utcnow()
    return WebhookDelivery(
        webhook_id=webhook_id,
        event=event,
        study_id=study_id,
        trial_id=trial_id,
        payload=body,
        state=DeliveryState.PENDING,
        attempts=0,
        next_attempt_at=now,
        error="",
        created_at=now,
    )


def wake(session: Session, study_id: int, count: int) -> None:
    """Wakes the dispatcher once the session commits."""
    notify(session, study_id, WAKE_KIND, {"deliveries": count})


def _enqueue(
    session: Session,
    study: Study,
    trial: Trial | None,
    events: Sequence[tuple[str, Mapping[str, Any], str]],
) -> None:
    webhooks = WebhookRepository(session).matching(study.project_id, [study.id])
    rows = []
    for event, data, text in events:
        body: dict[str, Any] | None = None
        for webhook in webhooks:
            if event in (webhook.events or ()):
                body = body or payload(event, study, trial, data, text)
                rows.append(
                    delivery(webhook.id, event, body, study.id, trial.id if trial else None)
                )
    if rows:
        DeliveryRepository(session).add_all(rows)
        wake(session, study.id, len(rows))


def trial_changed(
    session: Session,
    study: Study,
    trial: Trial,
    change: Change,
    best_before: tuple[float | None, int | None],
) -> None:
    """After `lifecycle.apply`: a new best value of the study, a trial failed for good."""
    events: list[tuple[str, Mapping[str, Any], str]] = []
    if (
        study.best_trial_id == trial.id
        and study.best_value is not None
        and (study.best_value, study.best_trial_id) != best_before
    ):
        previous = best_before[0]
        events.append(
            (
                NEW_BEST,
                {
                    "value": study.best_value,
                    "previous": previous,
                    "trial_number": trial.number,
                    "metric": study.metric,
                },
                f'Study "{study.name}": new best {study.metric} {number(study.best_value)} '
                f"(was {number(previous)}) from trial #{trial.number}",
            )
        )
    failed = [step for step in change.steps if step.to_state == TrialState.FAILED]
    if failed:
        reason = trial.error or failed[-1].reason
        events.append(
            (
                TRIAL_FAILED,
                {"reason": reason, "trial_number": trial.number},
                f'Study "{study.name}": trial #{trial.number} failed: {reason}',
            )
        )
    if events and trial.source not in QUIET_SOURCES:
        _enqueue(session, study, trial, events)


def study_finished(session: Session, study: Study, previous: str, reason: str) -> None:
    """After `finish_study`: the study ended (and, when that is why, reached its target)."""
    events: list[tuple[str, Mapping[str, Any], str]] = []
    target = (study.limits or {}).get("target_value")
    if (
        study.state == StudyState.COMPLETED
        and target is not None
        and study.best_value is not None
        and reason.startswith("target_value")
    ):
        events.append(
            (
                TARGET_REACHED,
                {"target": target, "value": study.best_value, "trial_id": study.best_trial_id},
                f'Study "{study.name}" reached its target {study.metric} {number(target)}: '
                f"best {number(study.best_value)}",
            )
        )
    events.append(
        (
            STUDY_FINISHED,
            {
                "state": study.state,
                "reason": reason,
                "previous_state": previous,
                "best_value": study.best_value,
                "best_trial_id": study.best_trial_id,
                "n_trials": study.next_number,
            },
            f'Study "{study.name}" {study.state}: {reason}',
        )
    )
    _enqueue(session, study, None, events)


@dataclass(frozen=True)
class LostTrial:
    """A running trial the sweep recovered because its worker (or heartbeat) went silent."""

    worker: str
    trial: Trial
    study: Study
    reason: str


def workers_lost(session: Session, lost: Sequence[LostTrial]) -> None:
    """After a sweep: one "worker.lost" per lost worker and webhook, listing the trials
    (those the webhook hears of) that the worker held."""
    if not lost:
        return
    repo = WebhookRepository(session)
    rows: list[WebhookDelivery] = []
    by_worker: dict[str, list[LostTrial]] = {}
    for item in lost:
        by_worker.setdefault(item.worker, []).append(item)
    projects: dict[int, set[int]] = {}
    for item in lost:
        projects.setdefault(item.study.project_id, set()).add(item.study.id)
    hooks: list[Webhook] = []
    for project_id, study_ids in sorted(projects.items()):
        hooks.extend(repo.matching(project_id, study_ids))
    for worker, items in by_worker.items():
        for webhook in hooks:
            if WORKER_LOST not in (webhook.events or ()):
                continue
            heard = [
                i
                for i in items
                if i.study.project_id == webhook.project_id
                and (webhook.study_id is None or webhook.study_id == i.study.id)
            ]
            if not heard:
                continue
            studies = {i.study.id: i.study for i in heard}
            study = next(iter(studies.values())) if len(studies) == 1 else None
            trial = heard[0].trial if len(heard) == 1 else None
            data = {
                "worker": worker,
                "reason": heard[0].reason,
                "trials": [
                    {
                        "id": i.trial.id,
                        "number": i.trial.number,
                        "study_id": i.study.id,
                        "study_name": i.study.name,
                        "state": i.trial.state,
                        "retried": i.trial.state == TrialState.QUEUED,
                    }
                    for i in heard
                ],
            }
            where = f'study "{study.name}"' if study is not None else f"{len(studies)} studies"
            text = (
                f"Worker {worker} was lost ({heard[0].reason}): "
                f"{len(heard)} trial(s) of {where} affected"
            )
            rows.append(
                delivery(
                    webhook.id,
                    WORKER_LOST,
                    payload(WORKER_LOST, study, trial, data, text),
                    study.id if study is not None else None,
                    trial.id if trial is not None else None,
                )
            )
    if rows:
        DeliveryRepository(session).add_all(rows)
        wake(session, lost[0].study.id, len(rows))


def ping(session: Session, webhook: Webhook, study: Study | None) -> WebhookDelivery:
    """A test delivery, sent at once whatever the webhook's events and state."""
    text = f"Test delivery from Tunelab for webhook {webhook.id} ({webhook.url})"
    body = payload(PING, study, None, {"webhook_id": webhook.id}, text)
    row = DeliveryRepository(session).add(
        delivery(webhook.id, PING, body, study.id if study else None, None)
    )
    wake(session, study.id if study else 0, 1)
    return row


def again(session: Session, original: WebhookDelivery) -> WebhookDelivery:
    """A new delivery of an earlier one's payload."""
    row = DeliveryRepository(session).add(
        delivery(
            original.webhook_id,
            original.event,
            dict(original.payload),
            original.study_id,
            original.trial_id,
        )
    )
    wake(session, original.study_id or 0, 1)
    return row
