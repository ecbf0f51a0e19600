from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Body, Request, status
from sqlalchemy.orm import Session

from app.auth.dependencies import CurrentAccess
from app.core.errors import Invalid
from app.db.session import SessionDep, unit_of_work
from app.projects import service as projects
from app.studies import service as studies
from app.studies.schemas import StudyRead
from app.transfer import optuna, service
from app.transfer.schemas import OptunaImport

router = APIRouter(tags=["transfer"])

# The one path whose body may exceed TUNELAB_MAX_BODY_BYTES (app/core/limits.py).
IMPORT_STREAM_PATH = "/api/v1/studies/import/stream"
# An Optuna study comes as one JSON document (its trials' intermediate values make it
# large): a limit of its own, well above a request's, still one a server parses at once.
IMPORT_OPTUNA_PATH = "/api/v1/studies/import/optuna"
IMPORT_OPTUNA_BYTES = 64 * 1024 * 1024


@router.get("/studies/{study_id}/export")
def export_study(study_id: int, session: SessionDep) -> dict[str, Any]:
    """Everything the study holds, for `POST /studies/import` on another server."""
    return service.export_study(session, study_id)


@router.post("/studies/import", status_code=status.HTTP_201_CREATED)
async def import_study(
    document: Annotated[dict[str, Any], Body()],
    request: Request,
    access: CurrentAccess,
    project: str | None = None,
) -> StudyRead:
    """Creates a study from an export, with new ids, in `project` (default: the default
    project; needs the member role there). Bodies over the server's size limit are
    refused: send big studies to `POST /studies/import/stream` (`tunelab import` does)."""

    def work(session: Session) -> StudyRead:
        project_id = projects.project_for_new_study(session, access, project)
        return studies.read_study(session, service.import_study(session, document, project_id))

    return await unit_of_work(request, work)


@router.post(
    "/studies/import/stream",
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                # One JSON object per line; an array of objects is the nearest schema.
                "application/x-ndjson": {"schema": {"type": "array", "items": {"type": "object"}}}
            },
        }
    },
)
async def import_study_stream(
    request: Request, access: CurrentAccess, project: str | None = None
) -> StudyRead:
    """Creates a study from an export sent as NDJSON lines (a header, then trials, their
    metric points and logs, events, and an `end` line with the counts), for studies of any
    size: the body may reach TUNELAB_MAX_IMPORT_BYTES, each line TUNELAB_MAX_BODY_BYTES.
    One transaction: a stream refused or cut short leaves nothing behind."""
    max_line = int(request.app.state.settings.max_body_bytes)

    def work(session: Session) -> StudyRead:
        project_id = projects.project_for_new_study(session, access, project)
        study = service.import_lines(session, _body_lines(request, max_line), project_id)
        return studies.read_study(session, study)

    return await unit_of_work(request, work)


@router.post("/studies/import/optuna", status_code=status.HTTP_201_CREATED)
async def import_optuna_study(
    body: OptunaImport, request: Request, access: CurrentAccess, project: str | None = None
) -> StudyRead:
    """Creates a study from an Optuna study (`tunelab.integrations.optuna.study_document`):
    its trials, parameters (the space inferred from their distributions), values, states,
    intermediate values and user attributes, continued by `strategy` (default tpe) for
    `more_trials` more. In `project` (default: the default project; member role there)."""

    def work(session: Session) -> StudyRead:
        project_id = projects.project_for_new_study(session, access, project)
        return studies.read_study(session, optuna.import_optuna(session, body, project_id))

    return await unit_of_work(request, work)


def _body_lines(request: Request, max_line: int) -> Iterator[bytes]:
    """The request body's lines, read as they arrive. The unit of work runs in a worker
    thread; each chunk is awaited on the event loop."""
    chunks = request.stream()

    async def next_chunk() -> bytes:
        return await anext(chunks)

    pending = bytearray()
    scanned = 0  # bytes of `pending` known to hold no newline
    while True:
        try:
            chunk = anyio.from_thread.run(next_chunk)
        except StopAsyncIteration:
            break
        pending += chunk
        while (end := pending.find(b"\n", scanned)) >= 0:
            yield bytes(pending[:end])
            del pending[: end + 1]
            scanned = 0
        scanned = len(pending)
        if scanned > max_line:
            raise Invalid(f"a line is longer than {max_line} bytes", field="body")
    if pending:
        yield bytes(pending)
