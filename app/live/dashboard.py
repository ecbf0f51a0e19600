"""Serves the built dashboard (frontend/dist) at `/` with a single-page-app fallback.

It answers only what no route matched (a 404 handler), so every API route, present or
added later, keeps precedence, and `/api/...` misses stay JSON errors.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.errors import error_body

INDEX = "index.html"


def install_dashboard(app: FastAPI, dist: Path) -> None:
    root = dist.resolve()

    @app.exception_handler(404)
    async def _dashboard_or_404(request: Request, exc: Exception) -> Response:
        detail = exc.detail if isinstance(exc, StarletteHTTPException) else "Not Found"
        headers = exc.headers if isinstance(exc, StarletteHTTPException) else None
        path = request.url.path
        if (
            path.startswith("/api/")
            or request.method not in ("GET", "HEAD")
            or not (root / INDEX).is_file()
        ):
            return JSONResponse(error_body(str(detail), None), status_code=404, headers=headers)
        candidate = (root / path.lstrip("/")).resolve()
        if candidate.is_file() and candidate.is_relative_to(root):
            immutable = candidate.parent.name == "assets"  # hashed names: cache for good
            cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
            return FileResponse(candidate, headers={"Cache-Control": cache})
        if "." in path.rsplit("/", 1)[-1]:  # a missing asset is a 404, not the app
            return JSONResponse(error_body("Not Found", None), status_code=404)
        return FileResponse(root / INDEX, headers={"Cache-Control": "no-cache"})
