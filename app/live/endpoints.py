"""Server-Sent Events: `GET /studies/{id}/events` for one study, `GET /events` for all."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from app.auth.dependencies import CurrentAccess
from app.db.session import Database, SessionDep
from app.live.hub import Hub, Subscription
from app.projects import service as projects
from app.projects.access import Access
from app.studies import service as studies
from app.webhooks.outbox import WAKE_KIND as WEBHOOK_WAKE

router = APIRouter(tags=["live"])

KEEPALIVE_S = 15.0
# Changes that arrive together go out in one write: a busy study sends a few frames a
# second instead of one per metric batch.
BATCH_S = 0.05
MAX_BATCH = 500


def _frame(event: str, data: object) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, default=str)}\n\n".encode()


# Whether the caller may see a study's changes (None: every study's).
Visible = Callable[[int], Awaitable[bool]]


async def _stream(
    request: Request, hub: Hub, study_id: int | None, visible: Visible | None = None
) -> AsyncIterator[bytes]:
    async with hub.listen(study_id) as subscription:
        yield b"retry: 2000\n\n" + _frame("ready", {"study_id": study_id})
        while not await request.is_disconnected():
            frames = await _next_frames(subscription, visible)
            if frames:
                yield frames
            else:
                yield b": keep-alive\n\n"


async def _next_frames(subscription: Subscription, visible: Visible | None = None) -> bytes:
    try:
        first = await asyncio.wait_for(subscription.queue.get(), KEEPALIVE_S)
    except TimeoutError:
        first = None
    if subscription.overflowed:
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
        subscription.overflowed = False
        return _frame("resync", {})
    if first is None:
        return b""
    await asyncio.sleep(BATCH_S)
    changes = [first]
    while not subscription.queue.empty() and len(changes) < MAX_BATCH:
        changes.append(subscription.queue.get_nowait())
    # The webhook dispatcher's wake-ups travel the hub between server processes; no page
    # has a use for them.
    changes = [c for c in changes if c["kind"] != WEBHOOK_WAKE]
    if visible is not None:
        changes = [c for c in changes if await visible(int(c["study_id"]))]
    return b"".join(_frame(c["kind"], {"study_id": c["study_id"], **c["data"]}) for c in changes)


def _visible_to(request: Request, access: Access) -> Visible | None:
    """For the all-studies stream of a caller that does not see every project: whether a
    study is in one of its projects, looked up once per study (a study never moves)."""
    if access.visible_projects() is None:
        return None
    database: Database = request.app.state.database
    known: dict[int, bool] = {}

    def look_up(study_id: int) -> bool:
        with database.session(autocommit=True) as session:
            return study_id in projects.visible_study_ids(session, access, [study_id])

    async def visible(study_id: int) -> bool:
        if study_id not in known:
            if len(known) > 100_000:
                known.clear()
            known[study_id] = await to_thread.run_sync(look_up, study_id)
        return known[study_id]

    return visible


def _sse(
    request: Request, study_id: int | None, visible: Visible | None = None
) -> StreamingResponse:
    hub: Hub = request.app.state.hub
    return StreamingResponse(
        _stream(request, hub, study_id, visible),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# A stream lives for minutes or hours, and the request's session (opened by app-wide
# dependencies such as authentication) would live with it: on SQLite its transaction holds
# the write lock. So each stream endpoint takes that session, uses it, and closes it first.


@router.get("/studies/{study_id}/events", response_class=StreamingResponse)
async def study_events(study_id: int, request: Request, session: SessionDep) -> StreamingResponse:
    """Changes of one study as they commit: `study`, `trial`, `metrics`, `event`, `log`;
    `resync` when this connection fell behind and should reload what it shows."""

    def check() -> None:
        try:
            studies.get_study(session, study_id)
        finally:
            session.close()

    await to_thread.run_sync(check)
    return _sse(request, study_id)


@router.get("/events", response_class=StreamingResponse)
async def all_events(
    request: Request, session: SessionDep, access: CurrentAccess
) -> StreamingResponse:
    """Changes of every study the caller may see (for the studies list)."""
    await to_thread.run_sync(session.close)
    return _sse(request, None, _visible_to(request, access))
