"""Every SQL query about projects, their members, and which project a study or trial is in."""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.projects.models import DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NAME, Project, ProjectMember
from app.studies.models import Study
from app.trials.models import Trial
from app.webhooks.models import Webhook, WebhookDelivery


class ProjectRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, project_id: int) -> Project | None:
        return self.session.get(Project, project_id)

    def by_name(self, name: str) -> Project | None:
        return self.session.scalars(select(Project).where(Project.name == name)).first()

    def add(self, project: Project) -> Project:
        self.session.add(project)
        self.session.flush()
        return project

    def delete(self, project: Project) -> None:
        self.session.delete(project)
        self.session.flush()

    def ensure_default(self) -> Project:
        """The default project, created when missing (a database emptied by hand)."""
        project = self.get(DEFAULT_PROJECT_ID)
        if project is None:
            project = self.add(Project(id=DEFAULT_PROJECT_ID, name=DEFAULT_PROJECT_NAME))
        return project

    def listed(self, ids: frozenset[int] | None = None) -> list[Project]:
        stmt = select(Project).order_by(Project.id)
        if ids is not None:
            stmt = stmt.where(Project.id.in_(ids))
        return list(self.session.scalars(stmt))

    def study_counts(self) -> dict[int, int]:
        stmt = select(Study.project_id, func.count()).group_by(Study.project_id)
        return {int(pid): int(n) for pid, n in self.session.execute(stmt)}

    def count_studies(self, project_id: int) -> int:
        stmt = select(func.count()).select_from(Study).where(Study.project_id == project_id)
        return int(self.session.scalar(stmt) or 0)

    # Members.

    def roles_of_token(self, token_id: int) -> dict[int, str]:
        stmt = select(ProjectMember.project_id, ProjectMember.role).where(
            ProjectMember.token_id == token_id
        )
        return {int(pid): str(role) for pid, role in self.session.execute(stmt)}

    def member(self, project_id: int, token_id: int) -> ProjectMember | None:
        return self.session.get(ProjectMember, (project_id, token_id))

    def add_member(self, member: ProjectMember) -> ProjectMember:
        self.session.add(member)
        self.session.flush()
        return member

    def remove_member(self, project_id: int, token_id: int) -> bool:
        stmt = delete(ProjectMember).where(
            ProjectMember.project_id == project_id, ProjectMember.token_id == token_id
        )
        return bool(self.session.execute(stmt).rowcount)  # type: ignore[attr-defined]

    def members(self, project_id: int) -> list[ProjectMember]:
        stmt = (
            select(ProjectMember)
            .where(ProjectMember.project_id == project_id)
            .order_by(ProjectMember.token_id)
        )
        return list(self.session.scalars(stmt))

    # Where a study or trial lives: what the guard asks on every request it cannot settle
    # from the token's own role. One indexed lookup each.

    def project_of_study(self, study_id: int) -> int | None:
        return self.session.scalar(select(Study.project_id).where(Study.id == study_id))

    def project_of_trial(self, trial_id: int) -> int | None:
        stmt = (
            select(Study.project_id)
            .join(Trial, Trial.study_id == Study.id)
            .where(Trial.id == trial_id)
        )
        return self.session.scalar(stmt)

    def project_of_webhook(self, webhook_id: int) -> int | None:
        return self.session.scalar(select(Webhook.project_id).where(Webhook.id == webhook_id))

    def project_of_delivery(self, delivery_id: int) -> int | None:
        stmt = (
            select(Webhook.project_id)
            .join(WebhookDelivery, WebhookDelivery.webhook_id == Webhook.id)
            .where(WebhookDelivery.id == delivery_id)
        )
        return self.session.scalar(stmt)

    def projects_of_studies(self, study_ids: list[int]) -> dict[int, int]:
        if not study_ids:
            return {}
        stmt = select(Study.id, Study.project_id).where(Study.id.in_(study_ids))
        return {int(sid): int(pid) for sid, pid in self.session.execute(stmt)}
