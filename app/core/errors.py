"""Typed errors raised by services, and the JSON error contract: {"detail", "field"}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.engine.errors import ConfigError
from app.engine.lifecycle import IllegalTransition


class ApiError(Exception):
    status_code = 400

    def __init__(
        self, detail: str, field: str | None = None, headers: dict[str, str] | None = None
    ):
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = headers or {}


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class Gone(ApiError):
    status_code = 410


class Invalid(ApiError):
    status_code = 422


class Forbidden(ApiError):
    status_code = 403


class Unauthorized(ApiError):
    status_code = 401


class StudyNotFound(NotFound):
    def __init__(self, study_id: int) -> None:
        super().__init__(f"study {study_id} not found", field="study_id")


class TrialNotFound(NotFound):
    def __init__(self, trial_id: int) -> None:
        super().__init__(f"trial {trial_id} not found", field="trial_id")


def error_body(detail: str, field: str | None, **extra: Any) -> dict[str, Any]:
    return {"detail": detail, "field": field, **extra}


def _field_from_loc(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    # Discriminated unions add the tag ("float", "int", ...) and function validators
    # their own names to the location; a user thinks in fields, so drop them.
    cleaned = [
        p
        for p in parts
        if p not in ("float", "int", "categorical", "fixed") and not p.startswith("function-")
    ]
    return ".".join(cleaned) or "body"


def _out_of_range_field(request: Request) -> str:
    """The path or query parameter holding an integer beyond 64 bits, else the body."""
    params = [*request.path_params.items(), *request.query_params.multi_items()]
    for name, value in params:
        text = str(value).strip()
        if text.lstrip("+-").isdigit() and abs(int(text)) > 2**63 - 1:
            return str(name)
    return "body"


def _field_of(error: Any) -> str:
    field = _field_from_loc(error.get("loc", ()))
    kind = error.get("type")
    if kind == "json_invalid":
        # The location is a character offset into the body, not a field.
        return "body"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        # An unknown or missing tag of a discriminated union (a parameter's `type`).
        discriminator = str((error.get("ctx") or {}).get("discriminator", "'type'")).strip("'")
        return f"{field}.{discriminator}" if field != "body" else discriminator
    return field


# The error contract as the OpenAPI schema states it, so that clients (and the fuzz tests)
# can check every error response against it.
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["detail", "field"],
    "properties": {
        "detail": {"type": "string"},
        "field": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "detail": {"type": "string"}},
            },
        },
    },
}
_DOCUMENTED_ERRORS = {
    "400": "Malformed request",
    "401": "No token, or an unknown or revoked one",
    "403": "The token's role or scope does not allow this",
    "404": "Not found",
    "409": "Conflicts with the current state",
    "410": "The study has finished",
    "413": "The request body is too large",
    "422": "Invalid input; `field` names it",
    "503": "The database is unavailable for a moment; send the request again",
}


def document_errors(app: FastAPI) -> None:
    """Replaces FastAPI's validation-error schema with ours and lists the error responses."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # cached by FastAPI; the edits below are idempotent
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        components["HTTPValidationError"] = ERROR_SCHEMA
        components.pop("ValidationError", None)
        ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                responses = operation.setdefault("responses", {})
                for code, description in _DOCUMENTED_ERRORS.items():
                    responses[code] = {"description": description, "content": ref}
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def install_error_handlers(app: FastAPI) -> None:
    document_errors(app)

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.detail, exc.field), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(ConfigError)
    async def _config_error(_request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(error_body(exc.detail, exc.field), status_code=422)

    # A trial move its state does not allow (completing a queued trial, say).
    @app.exception_handler(IllegalTransition)
    async def _illegal_transition(_request: Request, exc: IllegalTransition) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "state"), status_code=409)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_of(e), "detail": str(e.get("msg", "invalid"))} for e in exc.errors()
        ]
        # A misspelled key is the cause of the "Field required" beside it: name it first.
        unknown = [i for i, e in enumerate(exc.errors()) if e.get("type") == "extra_forbidden"]
        first = (
            errors[unknown[0] if unknown else 0]
            if errors
            else {"field": "body", "detail": "invalid request"}
        )
        return JSONResponse(
            error_body(first["detail"], first["field"], errors=errors), status_code=422
        )

    # Numbers the database cannot hold (an id of 2**70, say) pass the schemas; they are
    # the client's mistake, not the server's.
    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(
                "a number in the request is out of the range the server stores",
                _out_of_range_field(request),
            ),
            status_code=422,
        )

    # The database restarting or out of connections: the client should send again, and
    # every write is safe to re-send (metric points are keyed by (trial, name, step)).
    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database_unavailable(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body("the database is unavailable; send the request again", "database"),
            status_code=503,
            headers={"Retry-After": "1"},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # The framework's own errors name the part of the request they are about, too.
        field = _HTTP_ERROR_FIELDS.get(exc.status_code, "request")
        return JSONResponse(
            error_body(str(exc.detail), field), status_code=exc.status_code, headers=exc.headers
        )


_HTTP_ERROR_FIELDS = {
    400: "body",
    401: "authorization",
    403: "authorization",
    404: "path",
    405: "method",
    406: "accept",
    413: "body",
    415: "content-type",
}
