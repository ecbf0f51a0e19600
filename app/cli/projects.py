"""`tunelab project create | list | delete | members | grant | revoke`: projects and who
may do what in them, straight in the database (like `tunelab token`)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from app.cli.tokens import _database

ROLES = ["viewer", "member", "admin"]


def _db_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--data-dir", default=None)


def register(commands: Any) -> None:
    project = commands.add_parser("project", help="manage projects and their members")
    actions = project.add_subparsers(dest="project_command", metavar="ACTION", required=True)

    create = actions.add_parser("create", help="create a project")
    create.add_argument("name")
    create.add_argument("--description", default="")
    _db_flags(create)
    create.set_defaults(handler=run_create)

    listing = actions.add_parser("list", help="list projects with their study counts")
    _db_flags(listing)
    listing.set_defaults(handler=run_list)

    delete = actions.add_parser("delete", help="delete an empty project")
    delete.add_argument("project", help="name or id")
    _db_flags(delete)
    delete.set_defaults(handler=run_delete)

    members = actions.add_parser("members", help="list the tokens with a role in a project")
    members.add_argument("project", help="name or id")
    _db_flags(members)
    members.set_defaults(handler=run_members)

    grant = actions.add_parser("grant", help="give a token a role in a project")
    grant.add_argument("token_id", type=int)
    grant.add_argument("project", help="name or id")
    grant.add_argument("--role", choices=ROLES, default="member")
    _db_flags(grant)
    grant.set_defaults(handler=run_grant)

    revoke = actions.add_parser("revoke", help="take a token's role in a project away")
    revoke.add_argument("token_id", type=int)
    revoke.add_argument("project", help="name or id")
    _db_flags(revoke)
    revoke.set_defaults(handler=run_revoke)


def _run(args: argparse.Namespace, action: str, work: Any) -> int:
    """Runs `work(session)` in one unit of work; a refusal is one line on stderr."""
    from app.core.errors import ApiError

    database = _database(args)
    try:
        with database.session() as session:
            work(session)
    except ApiError as exc:
        print(f"tunelab project {action}: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        database.dispose()
    return 0


def run_create(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from app.projects import service
    from app.projects.schemas import ProjectCreate

    try:
        body = ProjectCreate(name=args.name, description=args.description)
    except ValidationError:
        print(
            "tunelab project create: a name starts with a letter and holds letters, digits, "
            "'_', '.' and '-' (at most 100)",
            file=sys.stderr,
        )
        return 1
    made: list[int] = []
    code = _run(
        args,
        "create",
        lambda s: made.append(service.create_project(s, body.name, body.description).id),
    )
    if code == 0:
        print(f"project {made[0]} ({body.name}) created")
    return code


def run_list(args: argparse.Namespace) -> int:
    from app.projects import service
    from app.projects.access import everything

    def work(session: Any) -> None:
        for project in service.list_projects(session, everything()):
            print(
                f"{project.id:>5}  {project.name:<24} {project.n_studies:>6} studies  {project.description}"
            )

    return _run(args, "list", work)


def run_delete(args: argparse.Namespace) -> int:
    from app.projects import service

    code = _run(args, "delete", lambda s: service.delete_project(s, args.project))
    if code == 0:
        print(f"project {args.project} deleted")
    return code


def run_members(args: argparse.Namespace) -> int:
    from app.projects import service

    def work(session: Any) -> None:
        for member in service.members(session, args.project):
            print(f"{member.token_id:>5}  {member.role:<7} {member.token_name}")

    return _run(args, "members", work)


def run_grant(args: argparse.Namespace) -> int:
    from app.auth.models import Role
    from app.projects import service

    code = _run(
        args, "grant", lambda s: service.grant(s, args.project, args.token_id, Role(args.role))
    )
    if code == 0:
        print(f"token {args.token_id} is {args.role} in project {args.project}")
    return code


def run_revoke(args: argparse.Namespace) -> int:
    from app.projects import service

    code = _run(args, "revoke", lambda s: service.revoke(s, args.project, args.token_id))
    if code == 0:
        print(f"token {args.token_id} has no role in project {args.project} any more")
    return code
