"""Webhooks: a URL told of a study's (or every study's of a project) events, and the log
of what was sent. Managing them needs the project's admin role (they send its data to
another machine); reading them, the viewer role. The guard resolves `{webhook_id}` to
the webhook's project (app/projects/service.check_path)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy.orm import Session

from app.auth.dependencies import CurrentAccess
from app.db.session import SessionDep, unit_of_work
from app.webhooks import service
from app.webhooks.schemas import (
    DeliveryList,
    DeliveryRead,
    WebhookCreate,
    WebhookCreated,
    WebhookList,
    WebhookRead,
    WebhookUpdate,
)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_webhook(
    body: WebhookCreate, request: Request, access: CurrentAccess
) -> WebhookCreated:
    """Creates a webhook; the answer is the only one that shows its secret."""
    return await unit_of_work(
        request, lambda session: service.create_webhook(session, access, body)
    )


@router.get("")
def list_webhooks(
    session: SessionDep,
    access: CurrentAccess,
    study_id: Annotated[int | None, Query(description="Only this study's webhooks.")] = None,
) -> WebhookList:
    """The webhooks of the caller's projects."""
    return WebhookList(items=service.list_webhooks(session, access, study_id))


@router.get("/{webhook_id}")
def get_webhook(webhook_id: int, session: SessionDep) -> WebhookRead:
    return service.read(session, service.get_webhook(session, webhook_id))


@router.patch("/{webhook_id}")
async def update_webhook(
    webhook_id: int, body: WebhookUpdate, request: Request, access: CurrentAccess
) -> WebhookCreated | WebhookRead:
    def work(session: Session) -> WebhookRead:
        return service.update_webhook(session, access, webhook_id, body)

    return await unit_of_work(request, work)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: int, request: Request) -> Response:
    await unit_of_work(request, lambda session: service.delete_webhook(session, webhook_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{webhook_id}/test", status_code=status.HTTP_202_ACCEPTED)
async def test_webhook(webhook_id: int, request: Request) -> DeliveryRead:
    """Sends a "ping" delivery at once (whatever the webhook's events, on or off)."""
    return await unit_of_work(request, lambda session: service.send_test(session, webhook_id))


@router.get("/{webhook_id}/deliveries")
def list_deliveries(
    webhook_id: int,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(description="Deliveries older than this id.")] = None,
) -> DeliveryList:
    """The webhook's deliveries, newest first."""
    return DeliveryList(items=service.deliveries(session, webhook_id, limit, before))


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver", status_code=status.HTTP_202_ACCEPTED
)
async def redeliver(webhook_id: int, delivery_id: int, request: Request) -> DeliveryRead:
    """Sends an earlier delivery's payload again, as a new delivery."""
    return await unit_of_work(
        request, lambda session: service.redeliver(session, webhook_id, delivery_id)
    )
