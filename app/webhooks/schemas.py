"""Webhooks in and out of the API (the contract in docs/reference.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

STUDY_FINISHED = "study.finished"
NEW_BEST = "study.new_best"
TARGET_REACHED = "study.target_reached"
TRIAL_FAILED = "trial.failed"
WORKER_LOST = "worker.lost"
PING = "ping"
# What a webhook may subscribe to; created without `events` it gets all but ping.
EVENTS = (STUDY_FINISHED, NEW_BEST, TARGET_REACHED, TRIAL_FAILED, WORKER_LOST, PING)
DEFAULT_EVENTS = [e for e in EVENTS if e != PING]
FORMATS = ("json", "slack")

Format = Literal["json", "slack"]


def check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError("the url must start with http:// or https://")
    if not parts.hostname:
        raise ValueError("the url names no host")
    return url


def check_events(events: list[str]) -> list[str]:
    if not events:
        raise ValueError("give at least one event")
    unknown = [e for e in events if e not in EVENTS]
    if unknown:
        raise ValueError(f"unknown event {unknown[0]!r}; known: {', '.join(EVENTS)}")
    return list(dict.fromkeys(events))


def check_secret(secret: str | None) -> str | None:
    if secret is not None and len(secret) < 8:
        raise ValueError("a secret needs at least 8 characters (or leave it out)")
    return secret


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2000)
    study_id: int | None = None
    project: str | None = None
    events: list[str] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    format: Format = "json"
    active: bool = True
    description: str = Field(default="", max_length=500)
    secret: str | None = Field(default=None, max_length=200)

    _url = field_validator("url")(check_url)
    _events = field_validator("events")(check_events)
    _secret = field_validator("secret")(check_secret)


class WebhookUpdate(BaseModel):
    """Every field optional; `secret` rotates it (null: a new one is generated)."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2000)
    study_id: int | None = None
    events: list[str] | None = None
    format: Format | None = None
    active: bool | None = None
    description: str | None = Field(default=None, max_length=500)
    secret: str | None = Field(default=None, max_length=200)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        return None if url is None else check_url(url)

    @field_validator("events")
    @classmethod
    def _events(cls, events: list[str] | None) -> list[str] | None:
        return None if events is None else check_events(events)

    _secret = field_validator("secret")(check_secret)


class LastDelivery(BaseModel):
    state: str
    status: int | None
    at: datetime


class WebhookRead(BaseModel):
    id: int
    url: str
    study_id: int | None
    project: str
    events: list[str]
    format: str
    active: bool
    description: str
    created_at: datetime
    secret_hint: str
    last_delivery: LastDelivery | None = None


class WebhookCreated(WebhookRead):
    """The answer to a create (and to a PATCH that rotates the secret): the only ones
    that show the secret."""

    secret: str


class WebhookList(BaseModel):
    items: list[WebhookRead]


class DeliveryRead(BaseModel):
    id: int
    webhook_id: int
    event: str
    study_id: int | None
    trial_id: int | None
    state: str
    attempts: int
    next_attempt_at: datetime | None
    status: int | None
    error: str
    duration_ms: int | None
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any]


class DeliveryList(BaseModel):
    items: list[DeliveryRead]
