"""Token minting, lookup and the rule that decides whether a request needs a token."""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import secrets

from sqlalchemy.orm import Session

from app.auth.models import ANONYMOUS_ID, BOOTSTRAP_ID, Role, Token
from app.auth.repository import TokenRepository
from app.core.errors import Invalid, NotFound
from app.db.types import utcnow
from app.engine.base import TrialState
from app.settings import Settings
from app.trials.models import Trial

# A recognisable prefix lets secret scanners and people spot a leaked token.
PERSON_PREFIX = "tl_"
TRIAL_PREFIX = "tlt_"
INTERNAL_PREFIX = "tli_"
MIN_ADMIN_TOKEN_LENGTH = 16


def hash_secret(secret: str) -> str:
    # The secrets carry 256 bits of entropy, so a plain SHA-256 cannot be brute-forced and
    # needs no salt or slow KDF; it also lets the lookup be one indexed equality query.
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


@functools.lru_cache(maxsize=64)
def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@functools.cache
def anonymous() -> Token:
    """The caller of a server that runs without tokens: loopback only, so the local user.
    One shared instance, only ever read: building an ORM object on every request cost
    as much as the rest of authenticating it."""
    return Token(id=ANONYMOUS_ID, name="anonymous", role=Role.ADMIN, prefix="", token_hash="")


def required_by_settings(settings: Settings) -> bool | None:
    """Whether requests need a token, when the settings alone decide; None when the tokens
    table does (`auto` on loopback without a bootstrap admin token)."""
    if settings.auth == "off":
        return False
    if settings.auth == "required" or not is_loopback(settings.host) or settings.admin_token:
        return True
    return None


def tokens_required(settings: Settings, session: Session) -> bool:
    """TUNELAB_AUTH=required or off decide outright; `auto` requires tokens once the server
    listens beyond loopback, a bootstrap admin token is set, or any token was created."""
    decided = required_by_settings(settings)
    if decided is not None:
        return decided
    return TokenRepository(session).any_active_person_token()


_internal_secret: str | None = None


def internal_secret() -> str:
    """A member token that lives only in this process's memory, for the in-process
    executor, which calls this same API over HTTP. Never stored, gone at exit."""
    global _internal_secret
    if _internal_secret is None:
        _internal_secret = new_secret(INTERNAL_PREFIX)
    return _internal_secret


def resolve_unstored(settings: Settings, secret: str) -> Token | None:
    """The in-process executor's token or the bootstrap admin token, which live in memory
    and need no query; None for any other secret."""
    if _internal_secret is not None and hmac.compare_digest(
        secret.encode(), _internal_secret.encode()
    ):
        return Token(
            id=BOOTSTRAP_ID, name="in-process executor", role=Role.MEMBER, prefix="", token_hash=""
        )
    if settings.admin_token and hmac.compare_digest(secret.encode(), settings.admin_token.encode()):
        return Token(
            id=BOOTSTRAP_ID,
            name="TUNELAB_ADMIN_TOKEN",
            role=Role.ADMIN,
            prefix=secret[:8],
            token_hash="",
        )
    return None


def may_be_stored(secret: str) -> bool:
    """Whether the secret has the shape of a token this server minted (else no query)."""
    return secret.startswith((PERSON_PREFIX, TRIAL_PREFIX)) and len(secret) <= 200


def resolve(session: Session, settings: Settings, secret: str) -> Token | None:
    """The active token with this secret, or None."""
    unstored = resolve_unstored(settings, secret)
    if unstored is not None:
        return unstored
    if not may_be_stored(secret):
        return None
    return TokenRepository(session).by_hash(hash_secret(secret))


def create_token(
    session: Session, role: Role, name: str = "", project: str | int | None = None
) -> tuple[Token, str]:
    """Creates a person's token; returns it and its secret, which is not stored.
    With `project`, the token has `role` in that project and no role of its own."""
    from app.projects import service as projects

    if role == Role.TRIAL:
        raise ValueError("trial tokens are minted when a trial is handed out")
    if project is not None and role == Role.NONE:
        raise Invalid("a token for a project needs a role in it", field="role")
    # Resolved first, so that an unknown project leaves no token behind.
    target = projects.resolve(session, project) if project is not None else None
    secret = new_secret(PERSON_PREFIX)
    token = Token(
        name=name,
        role=role,
        token_hash=hash_secret(secret),
        prefix=secret[: len(PERSON_PREFIX) + 4],
        created_at=utcnow(),
    )
    if target is not None:
        token.role = Role.NONE
    TokenRepository(session).add(token)
    if target is not None:
        projects.grant(session, target.id, token.id, role)
    return token, secret


def project_roles_of(session: Session, token_id: int) -> list[dict[str, object]]:
    from app.projects import service as projects

    return [
        {"project_id": pid, "role": role.value}
        for pid, role in sorted(projects.roles_of_token(session, token_id).items())
    ]


def project_roles_of_tokens(
    session: Session, token_ids: list[int]
) -> dict[int, list[dict[str, object]]]:
    return {token_id: project_roles_of(session, token_id) for token_id in token_ids}


def mint_trial_token(session: Session, trial: Trial, caller: Token) -> str | None:
    """A token that may act on this one trial, for the process that runs it. None for a
    trial that does not run now, and while the server runs without tokens."""
    if caller.anonymous or trial.state != TrialState.RUNNING:
        return None
    trial_id = trial.id
    secret = new_secret(TRIAL_PREFIX)
    TokenRepository(session).add(
        Token(
            name=f"trial {trial_id}",
            role=Role.TRIAL,
            token_hash=hash_secret(secret),
            prefix=secret[: len(TRIAL_PREFIX) + 4],
            trial_id=trial_id,
            created_at=utcnow(),
        )
    )
    return secret


def revoke(session: Session, token_id: int) -> Token:
    token = TokenRepository(session).get(token_id)
    if token is None or token.role == Role.TRIAL:
        raise NotFound(f"token {token_id} not found", field="token_id")
    if token.revoked_at is None:
        token.revoked_at = utcnow()
    return token


def list_tokens(session: Session, include_revoked: bool = False) -> list[Token]:
    """People's tokens (a trial's own tokens are not listed), oldest first."""
    return TokenRepository(session).list(include_revoked)


def exposure_problem(settings: Settings, session: Session) -> str | None:
    """Why the server must not start with these settings, or None when it may."""
    if is_loopback(settings.host):
        return None
    where = f"{settings.host}:{settings.port}"
    if settings.auth == "off":
        return (
            f"refusing to serve on {where} with TUNELAB_AUTH=off: anyone who reaches this "
            "address could create studies that run commands. Bind to 127.0.0.1, or turn "
            "authentication on."
        )
    if settings.admin_token:
        if len(settings.admin_token) < MIN_ADMIN_TOKEN_LENGTH:
            return (
                f"TUNELAB_ADMIN_TOKEN is shorter than {MIN_ADMIN_TOKEN_LENGTH} characters; "
                "use a long random value (python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return None
    if TokenRepository(session).any_active_person_token():
        return None
    return (
        f"refusing to serve on {where} without an API token: anyone who reaches this address "
        "could create studies that run commands. Create one with "
        "`tunelab token create --role admin` (same --database-url), or set "
        "TUNELAB_ADMIN_TOKEN, or bind to 127.0.0.1."
    )
