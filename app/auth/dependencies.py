"""Authentication and authorization as FastAPI dependencies.

`authorize` guards every route of the app (it is an app-wide dependency); the role a
route needs follows from its method (reads: viewer; writes: member; deletes: admin)
unless `ROUTE_ROLES` says otherwise. Endpoints that need the caller take `CurrentToken`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from app.auth import service
from app.auth.models import Role, Token
from app.core.errors import Forbidden, Unauthorized
from app.db.session import SessionDep
from app.settings import Settings

# Browsers cannot put a header on an EventSource; the dashboard may keep the token in this
# cookie, which is honoured on reads only (so a forged cross-site POST gains nothing).
COOKIE_NAME = "tunelab_token"
PUBLIC_ROUTES = frozenset({"/api/v1/health"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CHALLENGE = {"WWW-Authenticate": "Bearer"}

bearer = HTTPBearer(
    auto_error=False,
    description="An API token (`tunelab token create`) or a trial token handed out by ask.",
)

# What a trial token may do: run its own trial, nothing else.
TRIAL_ROUTES = frozenset(
    {
        ("GET", "/api/v1/trials/{trial_id}"),
        ("POST", "/api/v1/trials/{trial_id}/metrics"),
        ("GET", "/api/v1/trials/{trial_id}/metrics"),
        ("POST", "/api/v1/trials/{trial_id}/heartbeat"),
        ("POST", "/api/v1/trials/{trial_id}/logs"),
        ("GET", "/api/v1/trials/{trial_id}/logs"),
        ("POST", "/api/v1/trials/{trial_id}/complete"),
        ("GET", "/api/v1/trials/{trial_id}/events"),
        ("GET", "/api/v1/auth/me"),
    }
)

# Routes whose role differs from the method's default, by path prefix.
ROUTE_ROLES: tuple[tuple[str, Role], ...] = (
    ("/api/v1/auth/me", Role.TRIAL),
    ("/api/v1/tokens", Role.ADMIN),
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def authenticate(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Token:
    """The token the request carries; the anonymous stand-in while tokens are not required."""
    cached: Token | None = getattr(request.state, "token", None)
    if cached is not None:
        return cached
    settings = _settings(request)
    token = service.anonymous()
    if settings.auth != "off":
        secret = credentials.credentials if credentials else None
        if secret is None and request.method in _SAFE_METHODS:
            secret = request.cookies.get(COOKIE_NAME)
        if secret:
            found = service.resolve(session, settings, secret)
            if found is None:
                raise Unauthorized(
                    "the token is unknown or revoked", field="authorization", headers=_CHALLENGE
                )
            token = found
        elif _tokens_required(request, settings, session):
            raise Unauthorized(
                "this server requires a token: send `Authorization: Bearer <token>`",
                field="authorization",
                headers=_CHALLENGE,
            )
    request.state.token = token
    return token


CurrentToken = Annotated[Token, Depends(authenticate)]

# How long a loopback server in `auto` mode trusts its last look at the tokens table: a
# token created by the CLI in another process takes effect within this; one created over
# this server's API at once (the endpoint forgets the answer).
TOKENS_EXIST_TTL_S = 1.0


def _tokens_required(request: Request, settings: Settings, session: Session) -> bool:
    if settings.auth != "auto" or settings.admin_token or not service.is_loopback(settings.host):
        return service.tokens_required(settings, session)
    now = time.monotonic()
    cached: tuple[float, bool] | None = getattr(request.app.state, "tokens_exist", None)
    if cached is None or now - cached[0] > TOKENS_EXIST_TTL_S:
        cached = (now, service.tokens_required(settings, session))
        request.app.state.tokens_exist = cached
    return cached[1]


def forget_tokens_exist(request: Request) -> None:
    request.app.state.tokens_exist = None


def required_role(method: str, path: str) -> Role:
    for prefix, role in ROUTE_ROLES:
        if path == prefix or path.startswith(prefix + "/"):
            return role
    if method in _SAFE_METHODS:
        return Role.VIEWER
    if method == "DELETE":
        return Role.ADMIN
    return Role.MEMBER


def route_template(path: str, path_params: dict[str, Any]) -> str:
    """The route's template ("/api/v1/trials/{trial_id}") rebuilt from the concrete path.

    FastAPI includes routers lazily, so `scope["route"]` holds the route as its own router
    declared it, without the prefixes it was included under; the URL has them all."""
    segments = path.split("/")
    start = 0
    for name, value in path_params.items():
        for index in range(start, len(segments)):
            if segments[index] == str(value):
                segments[index] = "{" + name + "}"
                start = index + 1
                break
    return "/".join(segments)


def authorize(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """App-wide guard: authenticates, then checks the route's role and a trial token's scope."""
    path = route_template(request.scope["path"], request.path_params)
    if path in PUBLIC_ROUTES:
        return
    token = authenticate(request, session, credentials)
    check(token, request.method, path, request.path_params)


def check(token: Token, method: str, path: str, path_params: dict[str, str]) -> None:
    role = token.role_enum
    if role == Role.TRIAL:
        if (method, path) not in TRIAL_ROUTES:
            raise Forbidden(
                "a trial token may only report on, heartbeat, log and complete its own trial",
                field="authorization",
            )
        trial_id = path_params.get("trial_id")
        if trial_id is not None and str(token.trial_id) != str(trial_id):
            raise Forbidden(
                f"this token belongs to trial {token.trial_id}, not trial {trial_id}",
                field="trial_id",
            )
        return
    needed = required_role(method, path)
    if role.rank < needed.rank:
        raise Forbidden(
            f"this needs the {needed.value} role; the token has {role.value}",
            field="authorization",
        )


def require(role: Role) -> Callable[[Token], Token]:
    """For an endpoint that needs more than its method's default role:
    `token: Annotated[Token, Depends(require(Role.ADMIN))]`."""

    def dependency(token: CurrentToken) -> Token:
        if token.role_enum.rank < role.rank or token.role_enum == Role.TRIAL:
            raise Forbidden(
                f"this needs the {role.value} role; the token has {token.role}",
                field="authorization",
            )
        return token

    return dependency
