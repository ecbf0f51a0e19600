"""Authentication and authorization as FastAPI dependencies.

`authorize` guards every route of the app (it is an app-wide dependency); the role a
route needs follows from its method (reads: viewer; writes: member; deletes: admin)
unless `ROUTE_ROLES` says otherwise. Endpoints that need the caller take `CurrentToken`.

It is also the one place where projects keep teams apart: a path that names a study or a
trial is resolved to its project, and a caller without a role there gets 404, as for an id
that does not exist (app/projects/service.check_path). Endpoints that act on studies named
elsewhere (a body, a listing) take `CurrentAccess`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app.auth import service
from app.auth.models import Role, Token
from app.core.errors import Forbidden, Unauthorized
from app.db.session import Database
from app.projects import service as projects
from app.projects.access import Access, everything
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
    # Listing projects is for everyone (each sees its own); managing them is not.
    ("/api/v1/projects", Role.ADMIN),
)
# Routes whose writes need more than the member role (by path prefix); their reads keep
# the viewer role. Webhooks send a project's data to another machine: its admins decide.
WRITE_ROLES: tuple[tuple[str, Role], ...] = (("/api/v1/webhooks", Role.ADMIN),)
# Routes that need the token's own role: a role granted in a project does not count.
GLOBAL_ROLE_ROUTES = ("/api/v1/tokens", "/api/v1/projects")
# Routes that name no project and that every person's token may read, because they show
# only what the caller's projects hold (app/projects/access.py).
FILTERED_READS = frozenset(
    {"/api/v1/studies", "/api/v1/events", "/api/v1/projects", "/api/v1/webhooks"}
)


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


# How long this process trusts its last look at the tokens table: a token created or
# revoked by the CLI or another API process takes effect within this; one created or
# revoked over this server's API at once (the endpoints call `forget_cached_tokens`).
TOKEN_CACHE_TTL_S = 1.0
# Bound on remembered tokens; past it the cache starts afresh.
TOKEN_CACHE_SIZE = 10_000


class TokenCache:
    """This process's recent answers from the tokens table, so that a request (a metrics
    report every few milliseconds, say) needs no query to be authenticated."""

    def __init__(self, ttl_s: float = TOKEN_CACHE_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._tokens: dict[str, tuple[float, Token, Mapping[int, Role]]] = {}
        self._tokens_exist: tuple[float, bool] | None = None

    def token(self, secret_hash: str) -> tuple[Token, Mapping[int, Role]] | None:
        """The token and its roles in projects (granted roles change within the TTL too)."""
        entry = self._tokens.get(secret_hash)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1], entry[2]

    def remember_token(
        self, secret_hash: str, token: Token, roles: Mapping[int, Role] | None = None
    ) -> None:
        if len(self._tokens) >= TOKEN_CACHE_SIZE:
            self._tokens = {}
        self._tokens[secret_hash] = (time.monotonic(), _detached_copy(token), dict(roles or {}))

    def tokens_exist(self) -> bool | None:
        entry = self._tokens_exist
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def remember_tokens_exist(self, exist: bool) -> None:
        self._tokens_exist = (time.monotonic(), exist)

    def clear(self) -> None:
        self._tokens = {}
        self._tokens_exist = None


def _detached_copy(token: Token) -> Token:
    """A token bound to no session, safe to hand to requests in any thread."""
    return Token(
        id=token.id,
        name=token.name,
        role=token.role,
        prefix=token.prefix,
        token_hash=token.token_hash,
        trial_id=token.trial_id,
        created_at=token.created_at,
        revoked_at=token.revoked_at,
    )


def token_cache(app: Any) -> TokenCache:
    cache: TokenCache | None = getattr(app.state, "token_cache", None)
    if cache is None:
        cache = app.state.token_cache = TokenCache()
    return cache


def forget_cached_tokens(request: Request) -> None:
    token_cache(request.app).clear()


def _database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def _lookup(
    database: Database, settings: Settings, secret: str
) -> tuple[Token, Mapping[int, Role]] | None:
    with database.session() as session:
        token = service.resolve(session, settings, secret)
        if token is None:
            return None
        # A token with the admin role of its own sees everything: its grants cannot matter.
        roles = (
            projects.roles_of_token(session, token.id)
            if token.role_enum not in (Role.ADMIN, Role.TRIAL)
            else {}
        )
        return token, roles


def _look_for_tokens(database: Database, settings: Settings) -> bool:
    with database.session() as session:
        return service.tokens_required(settings, session)


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Token:
    """The token the request carries; the anonymous stand-in while tokens are not required.

    Async, with the database read in a worker thread only when the cache has no answer:
    most requests are then authenticated without a thread hop or a query."""
    cached: Token | None = getattr(request.state, "token", None)
    if cached is not None:
        return cached
    settings = _settings(request)
    token = service.anonymous()
    roles: Mapping[int, Role] = {}
    if settings.auth != "off":
        secret = credentials.credentials if credentials else None
        if secret is None and request.method in _SAFE_METHODS:
            secret = request.cookies.get(COOKIE_NAME)
        if secret:
            found = await _resolve(request, settings, secret)
            if found is None:
                raise Unauthorized(
                    "the token is unknown or revoked", field="authorization", headers=_CHALLENGE
                )
            token, roles = found
        elif await _tokens_required(request, settings):
            raise Unauthorized(
                "this server requires a token: send `Authorization: Bearer <token>`",
                field="authorization",
                headers=_CHALLENGE,
            )
    request.state.access = (
        everything()
        if token.role_enum == Role.ADMIN
        else Access(global_role=token.role_enum, project_roles=roles)
    )
    request.state.token = token
    return token


CurrentToken = Annotated[Token, Depends(authenticate)]


async def current_access(request: Request, token: CurrentToken) -> Access:
    """What the caller may do, project by project (set by `authenticate`)."""
    access: Access = request.state.access
    return access


CurrentAccess = Annotated[Access, Depends(current_access)]


async def _resolve(
    request: Request, settings: Settings, secret: str
) -> tuple[Token, Mapping[int, Role]] | None:
    unstored = service.resolve_unstored(settings, secret)
    if unstored is not None:
        return unstored, {}
    if not service.may_be_stored(secret):
        return None
    cache = token_cache(request.app)
    secret_hash = service.hash_secret(secret)
    found = cache.token(secret_hash)
    if found is None:
        # An unknown secret is looked up every time: remembering misses would let a
        # stream of made-up tokens fill the cache, and a new token work only later.
        found = await run_in_threadpool(_lookup, _database(request), settings, secret)
        if found is not None:
            cache.remember_token(secret_hash, *found)
    return found


async def _tokens_required(request: Request, settings: Settings) -> bool:
    decided = service.required_by_settings(settings)
    if decided is not None:
        return decided
    cache = token_cache(request.app)
    exist = cache.tokens_exist()
    if exist is None:
        exist = await run_in_threadpool(_look_for_tokens, _database(request), settings)
        cache.remember_tokens_exist(exist)
    return exist


def required_role(method: str, path: str) -> Role:
    if method in _SAFE_METHODS and path in FILTERED_READS:
        return Role.VIEWER
    for prefix, role in ROUTE_ROLES:
        if path == prefix or path.startswith(prefix + "/"):
            return role
    if method in _SAFE_METHODS:
        return Role.VIEWER
    for prefix, role in WRITE_ROLES:
        if path == prefix or path.startswith(prefix + "/"):
            return role
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


async def authorize(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """App-wide guard: authenticates, then checks the route's role and a trial token's scope."""
    path = route_template(request.scope["path"], request.path_params)
    if path in PUBLIC_ROUTES:
        return
    token = await authenticate(request, credentials)
    access: Access = request.state.access
    needed = check(token, request.method, path, request.path_params, access)
    if needed is not None:
        await run_in_threadpool(
            _check_project, _database(request), access, request.path_params, needed
        )


def _check_project(
    database: Database, access: Access, path_params: Mapping[str, Any], needed: Role
) -> None:
    with database.session(autocommit=True) as session:
        projects.check_path(session, access, path_params, needed)


def check(
    token: Token,
    method: str,
    path: str,
    path_params: Mapping[str, Any],
    access: Access | None = None,
) -> Role | None:
    """Raises when the token may not call this route. Returns the role the route needs in
    the project of the study or trial its path names when the token's own role does not
    settle it: `authorize` then looks the project up (and answers 404 when the caller
    may not see it, as for a study that does not exist)."""
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
        return None
    needed = required_role(method, path)
    if role.rank >= needed.rank:
        # A role of the token's own holds in every project: nothing to look up.
        return None
    if access is not None:
        if method in _SAFE_METHODS and path in FILTERED_READS:
            # A listing: the endpoint shows only what the caller's projects hold.
            return None
        if _global_route(path):
            pass
        elif projects.names_objects(path_params):
            if access.project_roles or not access.everywhere:
                return needed
        elif access.best_role.rank >= needed.rank:
            # Names no project (a new study, an import): the endpoint checks the role in
            # the project it acts on.
            return None
    raise Forbidden(
        f"this needs the {needed.value} role; the token has {role.value}",
        field="authorization",
    )


def _global_route(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in GLOBAL_ROLE_ROUTES)


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
