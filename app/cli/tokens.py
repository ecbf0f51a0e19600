"""`tunelab token create | list | revoke`: API tokens, straight in the database.
`--project` makes a token of one project (its role there, none elsewhere)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.server import settings_from


def register(commands: Any) -> None:
    token = commands.add_parser("token", help="manage API tokens")
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a token and print it (shown only once)")
    create.add_argument("--role", choices=["viewer", "member", "admin"], default="member")
    create.add_argument("--name", default="", help="who or what uses it")
    create.add_argument(
        "--project",
        default=None,
        help="a project (name or id): the role holds there only (see `tunelab project`)",
    )
    create.add_argument("--database-url", default=None)
    create.add_argument("--data-dir", default=None)
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", help="list tokens (never their secrets)")
    listing.add_argument("--all", action="store_true", help="include revoked tokens")
    listing.add_argument("--database-url", default=None)
    listing.add_argument("--data-dir", default=None)
    listing.set_defaults(handler=run_list)

    revoke = actions.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("token_id", type=int)
    revoke.add_argument("--database-url", default=None)
    revoke.add_argument("--data-dir", default=None)
    revoke.set_defaults(handler=run_revoke)


def _database(args: argparse.Namespace) -> Any:
    from app.db.migrate import upgrade
    from app.db.session import Database

    url = settings_from(args).resolved_database_url
    upgrade(url)
    return Database(url)


def run_create(args: argparse.Namespace) -> int:
    from app.auth import service
    from app.auth.models import Role
    from app.core.errors import ApiError

    database = _database(args)
    try:
        with database.session() as session:
            token, secret = service.create_token(session, Role(args.role), args.name, args.project)
            token_id = token.id
    except ApiError as exc:
        print(f"tunelab token create: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    # The secret alone on stdout, so that `TOKEN=$(tunelab token create)` works.
    print(secret)
    where = f" in project {args.project}" if args.project is not None else ""
    print(f"token {token_id} ({args.role}{where}) created; it is not shown again", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from app.auth import service
    from app.auth.repository import TokenRepository

    database = _database(args)
    try:
        with database.session() as session:
            for token in TokenRepository(session).list(include_revoked=args.all):
                revoked = f"  revoked {token.revoked_at:%Y-%m-%d}" if token.revoked_at else ""
                roles = service.project_roles_of(session, token.id)
                shown = "".join(f"  {r['role']}@{r['project_id']}" for r in roles)
                print(
                    f"{token.id:>5}  {token.role:<7} {token.prefix}...  {token.name}{revoked}{shown}"
                )
    finally:
        database.dispose()
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from app.auth import service
    from app.core.errors import NotFound

    database = _database(args)
    try:
        with database.session() as session:
            service.revoke(session, args.token_id)
    except NotFound as exc:
        print(f"tunelab token revoke: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    print(f"token {args.token_id} revoked")
    return 0
