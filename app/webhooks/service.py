"""Webhooks: their management (a project admin's, since they send data off the machine),
their delivery log, and the dispatcher's claim and record steps."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.auth.models import Role
from app.core.errors import Forbidden, Invalid, NotFound
from app.db.types import utcnow
from app.projects import service as projects
from app.projects.access import Access
from app.webhooks import outbox
from app.webhooks.formats import render
from app.webhooks.models import DeliveryState, Webhook, WebhookDelivery
from app.webhooks.repository import DeliveryRepository, WebhookRepository
from app.webhooks.schemas import (
    DeliveryRead,
    LastDelivery,
    WebhookCreate,
    WebhookCreated,
    WebhookRead,
    WebhookUpdate,
)

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def get_webhook(session: Session, webhook_id: int) -> Webhook:
    webhook = WebhookRepository(session).get(webhook_id)
    if webhook is None:
        raise NotFound(f"webhook {webhook_id} not found", field="webhook_id")
    return webhook


def _require_admin(access: Access, project_id: int, project_name: str, field: str) -> None:
    if not access.can(project_id, Role.ADMIN):
        raise Forbidden(
            f"webhooks of project {project_name!r} need the admin role there: "
            "they send the project's data to another machine",
            field=field,
        )


def _scope(
    session: Session, access: Access, study_id: int | None, project: str | None
) -> tuple[int, str]:
    """The project (id, name) a webhook belongs to, checked against the caller."""
    repo = WebhookRepository(session)
    if study_id is not None:
        project_id = repo.project_of_study(study_id)
        if project_id is None or not access.sees(project_id):
            raise Invalid(f"study {study_id} not found", field="study_id")
        name = repo.project_names([project_id])[project_id]
        if project is not None and project.strip():
            named = projects.resolve_visible(session, access, project)
            if named.id != project_id:
                raise Invalid(
                    f"study {study_id} is in project {name!r}, not {named.name!r}",
                    field="project",
                )
        _require_admin(access, project_id, name, "study_id")
        return project_id, name
    found = projects.resolve_visible(session, access, project)
    _require_admin(access, found.id, found.name, "project")
    return found.id, found.name


def to_read(
    webhook: Webhook, project_name: str, last: WebhookDelivery | None = None
) -> WebhookRead:
    return WebhookRead(
        id=webhook.id,
        url=webhook.url,
        study_id=webhook.study_id,
        project=project_name,
        events=list(webhook.events or []),
        format=webhook.format,
        active=webhook.active,
        description=webhook.description,
        created_at=webhook.created_at,
        secret_hint=webhook.secret[-4:],
        last_delivery=LastDelivery(
            state=last.state, status=last.status, at=last.delivered_at or last.created_at
        )
        if last is not None
        else None,
    )


def read(session: Session, webhook: Webhook) -> WebhookRead:
    name = WebhookRepository(session).project_names([webhook.project_id]).get(webhook.project_id)
    last = DeliveryRepository(session).last_of([webhook.id]).get(webhook.id)
    return to_read(webhook, name or "", last)


def _with_secret(session: Session, webhook: Webhook) -> WebhookCreated:
    return WebhookCreated(**read(session, webhook).model_dump(), secret=webhook.secret)


def create_webhook(session: Session, access: Access, body: WebhookCreate) -> WebhookCreated:
    project_id, _ = _scope(session, access, body.study_id, body.project)
    webhook = WebhookRepository(session).add(
        Webhook(
            project_id=project_id,
            study_id=body.study_id,
            url=body.url,
            secret=body.secret or new_secret(),
            events=list(body.events),
            format=body.format,
            active=body.active,
            description=body.description,
            created_at=utcnow(),
        )
    )
    return _with_secret(session, webhook)


def list_webhooks(session: Session, access: Access, study_id: int | None) -> list[WebhookRead]:
    repo = WebhookRepository(session)
    webhooks = repo.listed(access.visible_projects(), study_id)
    names = repo.project_names(w.project_id for w in webhooks)
    last = DeliveryRepository(session).last_of(w.id for w in webhooks)
    return [to_read(w, names.get(w.project_id, ""), last.get(w.id)) for w in webhooks]


def update_webhook(
    session: Session, access: Access, webhook_id: int, body: WebhookUpdate
) -> WebhookRead:
    """Changes the fields the body sets; "secret" (a value, or null for a new one) rotates
    the secret, and only then does the answer show it."""
    webhook = get_webhook(session, webhook_id)
    given = body.model_fields_set
    if "study_id" in given and body.study_id != webhook.study_id:
        if body.study_id is None:
            webhook.study_id = None
        else:
            project_id, _ = _scope(session, access, body.study_id, None)
            if project_id != webhook.project_id:
                raise Invalid(
                    f"study {body.study_id} is in another project than the webhook",
                    field="study_id",
                )
            webhook.study_id = body.study_id
    for name in ("url", "events", "format", "description"):
        value = getattr(body, name)
        if name in given:
            if value is None:
                raise Invalid(f"{name} cannot be null", field=name)
            setattr(webhook, name, list(value) if name == "events" else value)
    if "active" in given:
        if body.active is None:
            raise Invalid("active cannot be null", field="active")
        if webhook.active and not body.active:
            DeliveryRepository(session).fail_pending(webhook.id, "the webhook was turned off")
        webhook.active = body.active
    session.flush()
    if "secret" in given:
        webhook.secret = body.secret or new_secret()
        session.flush()
        return _with_secret(session, webhook)
    return read(session, webhook)


def delete_webhook(session: Session, webhook_id: int) -> None:
    WebhookRepository(session).delete(get_webhook(session, webhook_id))


def delivery_read(row: WebhookDelivery) -> DeliveryRead:
    return DeliveryRead(
        id=row.id,
        webhook_id=row.webhook_id,
        event=row.event,
        study_id=row.study_id,
        trial_id=row.trial_id,
        state=row.state,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.state == DeliveryState.PENDING else None,
        status=row.status,
        error=row.error or "",
        duration_ms=row.duration_ms,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        payload={"id": row.id, **(row.payload or {})},
    )


def send_test(session: Session, webhook_id: int) -> DeliveryRead:
    webhook = get_webhook(session, webhook_id)
    study = WebhookRepository(session).study(webhook.study_id) if webhook.study_id else None
    return delivery_read(outbox.ping(session, webhook, study))


def deliveries(
    session: Session, webhook_id: int, limit: int, before: int | None
) -> list[DeliveryRead]:
    get_webhook(session, webhook_id)
    return [delivery_read(d) for d in DeliveryRepository(session).page(webhook_id, limit, before)]


def redeliver(session: Session, webhook_id: int, delivery_id: int) -> DeliveryRead:
    get_webhook(session, webhook_id)
    original = DeliveryRepository(session).get(delivery_id)
    if original is None or original.webhook_id != webhook_id:
        raise NotFound(f"delivery {delivery_id} not found", field="delivery_id")
    return delivery_read(outbox.again(session, original))


# The dispatcher's steps (each one unit of work in a worker thread).


@dataclass(frozen=True)
class Outgoing:
    """One POST to make: everything the dispatcher needs outside the database."""

    delivery_id: int
    webhook_id: int
    url: str
    secret: str
    event: str
    body: bytes
    attempt: int


@dataclass(frozen=True)
class Outcome:
    delivery_id: int
    webhook_id: int
    attempt: int
    status: int | None
    error: str
    duration_ms: int
    retry_after_s: float | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class Policy:
    max_attempts: int
    retry_base_s: float
    retry_max_s: float
    lease_s: float

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Exponential backoff with jitter (±25 %) after the `attempt`-th try; a receiver's
        Retry-After is honoured up to retry_max_s."""
        base = min(self.retry_max_s, self.retry_base_s * 2 ** max(0, attempt - 1))
        delay = base * random.uniform(0.75, 1.25)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.retry_max_s))
        return delay


def claim(
    session: Session, policy: Policy, limit: int, busy: frozenset[int], public_url: str = ""
) -> tuple[list[Outgoing], datetime | None]:
    """Leases up to `limit` due deliveries (none of the `busy` webhooks') and renders
    their bodies (linking to the dashboard at `public_url`, when set); also returns when
    the next pending one is due."""
    now = utcnow()
    rows = DeliveryRepository(session).claim_due(
        now, now + timedelta(seconds=policy.lease_s), limit, busy
    )
    repo = WebhookRepository(session)
    out = []
    for row in rows:
        webhook = repo.get(row.webhook_id)
        if webhook is None:  # deleted meanwhile (the cascade takes the row too)
            continue
        out.append(
            Outgoing(
                delivery_id=row.id,
                webhook_id=webhook.id,
                url=webhook.url,
                secret=webhook.secret,
                event=row.event,
                body=render(row.payload or {}, row.id, webhook.format, public_url),
                attempt=row.attempts,
            )
        )
    next_due = None if len(rows) >= limit else DeliveryRepository(session).next_due()
    return out, next_due


def record(session: Session, policy: Policy, outcome: Outcome) -> None:
    """Stores an attempt's outcome: delivered, retried later, or failed for good. A 410
    Gone turns the webhook off (the receiver says it is gone for good)."""
    row = DeliveryRepository(session).get(outcome.delivery_id)
    if row is None or row.state != DeliveryState.PENDING:
        return
    now = utcnow()
    row.status = outcome.status
    row.error = outcome.error[:2000]
    row.duration_ms = outcome.duration_ms
    if outcome.ok:
        row.state = DeliveryState.DELIVERED
        row.delivered_at = now
        row.next_attempt_at = None
        row.error = ""
    elif outcome.status == 410:
        row.state = DeliveryState.FAILED
        row.next_attempt_at = None
        session.flush()
        WebhookRepository(session).set_active(outcome.webhook_id, False)
        DeliveryRepository(session).fail_pending(
            outcome.webhook_id, "the receiver answered 410 Gone: webhook turned off"
        )
    elif row.attempts >= policy.max_attempts:
        row.state = DeliveryState.FAILED
        row.next_attempt_at = None
    else:
        row.next_attempt_at = now + timedelta(
            seconds=policy.delay(row.attempts, outcome.retry_after_s)
        )
    session.flush()


def prune(session: Session, keep: int) -> int:
    """Keeps the newest `keep` deliveries of each webhook (and every pending one)."""
    repo = DeliveryRepository(session)
    return sum(repo.prune(webhook_id, keep) for webhook_id in repo.crowded_webhooks(keep))
