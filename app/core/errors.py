"""Typed errors raised by services, and the JSON error contract: {"detail", "field"}."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.engine.errors import ConfigError


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


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.detail, exc.field), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(ConfigError)
    async def _config_error(_request: Request, exc: ConfigError) -> JSONResponse:
        return JSONResponse(error_body(exc.detail, exc.field), status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_from_loc(e.get("loc", ())), "detail": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "detail": "invalid request"}
        return JSONResponse(
            error_body(first["detail"], first["field"], errors=errors), status_code=422
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc.detail), None), status_code=exc.status_code, headers=exc.headers
        )
