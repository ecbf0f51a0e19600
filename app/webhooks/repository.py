"""Every SQL query about webhooks and their deliveries."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from app.projects.models import Project
from app.studies.models import Study
from app.trials.models import Trial
from app.webhooks.models import DeliveryState, Webhook, WebhookDelivery


class WebhookRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, webhook_id: int) -> Webhook | None:
        return self.session.get(Webhook, webhook_id)

    def add(self, webhook: Webhook) -> Webhook:
        self.session.add(webhook)
        self.session.flush()
        return webhook

    def delete(self, webhook: Webhook) -> None:
        self.session.delete(webhook)
        self.session.flush()

    def listed(self, projects: frozenset[int] | None, study_id: int | None = None) -> list[Webhook]:
        stmt = select(Webhook).order_by(Webhook.id)
        if projects is not None:
            stmt = stmt.where(Webhook.project_id.in_(projects))
        if study_id is not None:
            stmt = stmt.where(Webhook.study_id == study_id)
        return list(self.session.scalars(stmt))

    def matching(self, project_id: int, study_ids: Iterable[int]) -> list[Webhook]:
        """The active webhooks of a project that hear these studies (their own, or all):
        one indexed query, run only when an event fires."""
        ids = sorted(set(study_ids))
        return list(
            self.session.scalars(
                select(Webhook)
                .where(
                    Webhook.project_id == project_id,
                    Webhook.active.is_(True),
                    or_(Webhook.study_id.is_(None), Webhook.study_id.in_(ids)),
                )
                .order_by(Webhook.id)
            )
        )

    def project_names(self, project_ids: Iterable[int]) -> dict[int, str]:
        ids = sorted(set(project_ids))
        if not ids:
            return {}
        rows = self.session.execute(select(Project.id, Project.name).where(Project.id.in_(ids)))
        return {pid: name for pid, name in rows}

    def project_of_study(self, study_id: int) -> int | None:
        return self.session.scalar(select(Study.project_id).where(Study.id == study_id))

    def study(self, study_id: int) -> Study | None:
        return self.session.get(Study, study_id)

    def studies(self, study_ids: Iterable[int]) -> dict[int, Study]:
        ids = sorted(set(study_ids))
        if not ids:
            return {}
        return {s.id: s for s in self.session.scalars(select(Study).where(Study.id.in_(ids)))}

    def trial(self, trial_id: int) -> Trial | None:
        return self.session.get(Trial, trial_id)

    def set_active(self, webhook_id: int, active: bool) -> None:
        self.session.execute(update(Webhook).where(Webhook.id == webhook_id).values(active=active))


class DeliveryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, delivery_id: int) -> WebhookDelivery | None:
        return self.session.get(WebhookDelivery, delivery_id)

    def add_all(self, deliveries: Sequence[WebhookDelivery]) -> None:
        self.session.add_all(deliveries)

    def add(self, delivery: WebhookDelivery) -> WebhookDelivery:
        self.session.add(delivery)
        self.session.flush()
        return delivery

    def page(self, webhook_id: int, limit: int, before: int | None) -> list[WebhookDelivery]:
        stmt = (
            select(WebhookDelivery)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
        if before is not None:
            stmt = stmt.where(WebhookDelivery.id < before)
        return list(self.session.scalars(stmt))

    def last_of(self, webhook_ids: Iterable[int]) -> dict[int, WebhookDelivery]:
        """Each webhook's newest delivery."""
        ids = sorted(set(webhook_ids))
        if not ids:
            return {}
        newest = (
            select(func.max(WebhookDelivery.id))
            .where(WebhookDelivery.webhook_id.in_(ids))
            .group_by(WebhookDelivery.webhook_id)
        )
        rows = self.session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.id.in_(newest.scalar_subquery()))
        )
        return {d.webhook_id: d for d in rows}

    def claim_due(
        self, now: datetime, lease_until: datetime, limit: int, skip_webhooks: Iterable[int] = ()
    ) -> list[WebhookDelivery]:
        """Takes up to `limit` pending deliveries that are due: each is leased until
        `lease_until` (a sender that dies leaves it to be retried then) and its attempt
        counted. On PostgreSQL rows another dispatcher holds are skipped; on SQLite the
        transaction holds the database's write lock."""
        stmt = (
            select(WebhookDelivery)
            .where(
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        skipped = sorted(set(skip_webhooks))
        if skipped:
            stmt = stmt.where(WebhookDelivery.webhook_id.not_in(skipped))
        if self.session.get_bind().dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        claimed = list(self.session.scalars(stmt))
        for delivery in claimed:
            delivery.attempts += 1
            delivery.next_attempt_at = lease_until
        self.session.flush()
        return claimed

    def next_due(self) -> datetime | None:
        """When the soonest pending delivery is due (the claim's index answers it)."""
        return self.session.scalar(
            select(func.min(WebhookDelivery.next_attempt_at)).where(
                WebhookDelivery.state == DeliveryState.PENDING
            )
        )

    def fail_pending(self, webhook_id: int, error: str) -> None:
        """Ends the pending deliveries of a webhook that was turned off."""
        self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.state == DeliveryState.PENDING,
            )
            .values(state=DeliveryState.FAILED, next_attempt_at=None, error=error)
        )

    def crowded_webhooks(self, keep: int) -> list[int]:
        """Webhooks with more than `keep` deliveries."""
        return list(
            self.session.scalars(
                select(WebhookDelivery.webhook_id)
                .group_by(WebhookDelivery.webhook_id)
                .having(func.count() > keep)
            )
        )

    def prune(self, webhook_id: int, keep: int) -> int:
        """Deletes the webhook's settled deliveries older than its newest `keep`."""
        cutoff = self.session.scalar(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.webhook_id == webhook_id)
            .order_by(WebhookDelivery.id.desc())
            .offset(keep)
            .limit(1)
        )
        if cutoff is None:
            return 0
        result = self.session.execute(
            delete(WebhookDelivery).where(
                WebhookDelivery.webhook_id == webhook_id,
                WebhookDelivery.id <= cutoff,
                WebhookDelivery.state != DeliveryState.PENDING,
            )
        )
        return int(getattr(result, "rowcount", 0) or 0)
