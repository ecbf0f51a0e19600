"""Imports every model so that the metadata (and Alembic) sees all tables."""

from app.auth.models import Token
from app.events.models import Event
from app.metrics.models import MetricPoint
from app.projects.models import Project, ProjectMember
from app.studies.models import Study, StudyState
from app.trials.models import Trial, TrialLog
from app.webhooks.models import Webhook, WebhookDelivery

__all__ = [
    "Event",
    "MetricPoint",
    "Project",
    "ProjectMember",
    "Study",
    "StudyState",
    "Token",
    "Trial",
    "TrialLog",
    "Webhook",
    "WebhookDelivery",
]
