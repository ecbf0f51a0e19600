"""Projects and membership; where a study or trial lives, and whether a caller may see it.

The guard in `app/auth/dependencies.py` asks `check_path` for every request whose path
names a study or trial and whose token's own role does not settle it: one place that no
route can forget. Endpoints that name studies elsewhere (a body, a listing) use the
helpers below with the request's `Access`."""

from __future__ import annotations

import re
from collections.abc import Mapping

from sqlalchemy.orm import Session

from app.auth.models import Role
from app.auth.repository import TokenRepository
from app.core.errors import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    StudyNotFound,
    TrialNotFound,
)
from app.followups.schemas import LineageRead
from app.projects.access import Access
from app.projects.models import DEFAULT_PROJECT_ID, DEFAULT_PROJECT_NAME, Project, ProjectMember
from app.projects.repository import ProjectRepository
from app.projects.schemas import MemberRead, ProjectRead

# Path parameters that name an object of a project, and how each is looked up.
OBJECT_PARAMS = ("study_id", "trial_id", "webhook_id", "delivery_id")
# Path parameters that name nothing inside a project.
GLOBAL_PARAMS = frozenset({"token_id", "kind", "project"})


def _is_int(text: str) -> bool:
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
    return re.fullmatch(r"-?[0-9]{1,30}", text) is not None


def _not_found(param: str, value: str) -> ApiError:
    """The same answer as for an id that does not exist, so that a caller without access
    cannot tell the two apart."""
    number = int(value) if _is_int(value) else value
    if param == "study_id" and isinstance(number, int):
        return StudyNotFound(number)
    if param == "trial_id" and isinstance(number, int):
        return TrialNotFound(number)
    return NotFound(f"{param.removesuffix('_id')} {value} not found", field=param)


def names_objects(path_params: Mapping[str, object]) -> bool:
    """Whether the path names something that lives in a project (or a parameter the
    guard does not know, which it then treats as such and denies)."""
    return any(name not in GLOBAL_PARAMS for name in path_params)


def check_path(
    session: Session, access: Access, path_params: Mapping[str, object], needed: Role
) -> None:
    """Raises 404 when the caller may not see the project of the study or trial the path
    names, 403 when it sees it with too low a role; returns when it may go on."""
    repo = ProjectRepository(session)
    for name, raw in path_params.items():
        if name in GLOBAL_PARAMS:
            continue
        value = str(raw)
        project_id: int | None = None
        if _is_int(value) and 0 <= int(value) <= 2**31 - 1:
            if name == "study_id":
                project_id = repo.project_of_study(int(value))
            elif name == "trial_id":
                project_id = repo.project_of_trial(int(value))
            elif name == "webhook_id":
                project_id = repo.project_of_webhook(int(value))
            elif name == "delivery_id":
                project_id = repo.project_of_delivery(int(value))
        if project_id is None:
            # Missing, or a parameter this guard does not know: only a caller that sees
            # every project gets past here (the endpoint answers 404 for a missing id).
            if access.everywhere:
                _require_role(access.global_role, needed)
                continue
            raise _not_found(name, value)
        role = access.role_in(project_id)
        if role is None:
            raise _not_found(name, value)
        _require_role(role, needed)


def _require_role(role: Role, needed: Role) -> None:
    if role.rank < needed.rank:
        raise Forbidden(
            f"this needs the {needed.value} role; the token has {role.value}",
            field="authorization",
        )


def roles_of_token(session: Session, token_id: int) -> dict[int, Role]:
    return {
        pid: Role(role) for pid, role in ProjectRepository(session).roles_of_token(token_id).items()
    }


# Projects.


def resolve(session: Session, ref: str | int | None, field: str = "project") -> Project:
    """A project by id or name; the default project for None."""
    repo = ProjectRepository(session)
    if ref is None:
        return repo.ensure_default()
    text = str(ref).strip()
    project: Project | None
    if _is_int(text):
        number = int(text)
        project = repo.ensure_default() if number == DEFAULT_PROJECT_ID else None
        if project is None and 0 < number <= 2**31 - 1:
            project = repo.get(number)
    else:
        project = repo.by_name(text)
        if project is None and text == "default":
            project = repo.ensure_default()
    if project is None:
        raise NotFound(f"project {text!r} not found", field=field)
    return project


def resolve_visible(
    session: Session, access: Access, ref: str | int | None, field: str = "project"
) -> Project:
    """Like `resolve`, but a project the caller may not see is not found either."""
    project = resolve(session, ref, field)
    if not access.sees(project.id):
        shown = DEFAULT_PROJECT_NAME if ref is None else str(ref).strip()
        raise NotFound(f"project {shown!r} not found", field=field)
    return project


def project_for_new_study(
    session: Session, access: Access, ref: str | int | None, field: str = "project"
) -> int:
    """The id of the project a new study goes into; the caller needs the member role there.
    Without `ref`: the default project, or for a token that may not create studies there
    but may in exactly one project, that one (so a team's scripts need not name it)."""
    if ref is None and not access.can(DEFAULT_PROJECT_ID, Role.MEMBER):
        own = [pid for pid, role in access.project_roles.items() if role.rank >= Role.MEMBER.rank]
        if len(own) == 1:
            ref = own[0]
    project = resolve_visible(session, access, ref, field)
    role = access.role_in(project.id)
    if role is None or role.rank < Role.MEMBER.rank:
        raise Forbidden(
            f"creating a study in project {project.name!r} needs the member role there",
            field=field,
        )
    return project.id


def visible_study_ids(session: Session, access: Access, study_ids: list[int]) -> set[int]:
    """Those of the studies that exist and that the caller sees."""
    projects = ProjectRepository(session).projects_of_studies(study_ids)
    return {sid for sid, pid in projects.items() if access.sees(pid)}


def create_project(session: Session, name: str, description: str = "") -> Project:
    repo = ProjectRepository(session)
    repo.ensure_default()
    if repo.by_name(name) is not None:
        raise Conflict(f"project {name!r} already exists", field="name")
    return repo.add(Project(name=name, description=description))


def to_read(project: Project, access: Access | None, n_studies: int = 0) -> ProjectRead:
    role = access.role_in(project.id) if access is not None else None
    return ProjectRead(
        id=project.id,
        name=project.name,
        description=project.description,
        created_at=project.created_at,
        role=role.value if role is not None else None,
        n_studies=n_studies,
    )


def list_projects(session: Session, access: Access) -> list[ProjectRead]:
    repo = ProjectRepository(session)
    repo.ensure_default()
    counts = repo.study_counts()
    return [to_read(p, access, counts.get(p.id, 0)) for p in repo.listed(access.visible_projects())]


def delete_project(session: Session, ref: str | int) -> None:
    """Deletes an empty project (its grants go with it). The default project stays."""
    repo = ProjectRepository(session)
    project = resolve(session, ref)
    if project.id == DEFAULT_PROJECT_ID:
        raise Conflict("the default project cannot be deleted", field="project")
    n = repo.count_studies(project.id)
    if n:
        raise Conflict(
            f"project {project.name!r} still has {n} studies: delete them first",
            field="project",
        )
    repo.delete(project)


# Members.


def _person_token(session: Session, token_id: int) -> str:
    token = TokenRepository(session).get(token_id)
    if token is None or token.role == Role.TRIAL or token.revoked_at is not None:
        raise NotFound(f"token {token_id} not found", field="token_id")
    return token.name


def grant(session: Session, ref: str | int, token_id: int, role: Role) -> MemberRead:
    """Gives the token this role in the project (replacing the one it had there)."""
    if role not in (Role.VIEWER, Role.MEMBER, Role.ADMIN):
        raise ValueError(f"not a project role: {role}")
    project = resolve(session, ref)
    name = _person_token(session, token_id)
    repo = ProjectRepository(session)
    member = repo.member(project.id, token_id)
    if member is None:
        member = repo.add_member(ProjectMember(project_id=project.id, token_id=token_id, role=role))
    else:
        member.role = role
    return MemberRead(project_id=project.id, token_id=token_id, token_name=name, role=role.value)


def revoke(session: Session, ref: str | int, token_id: int) -> None:
    project = resolve(session, ref)
    if not ProjectRepository(session).remove_member(project.id, token_id):
        raise NotFound(
            f"token {token_id} has no role in project {project.name!r}", field="token_id"
        )


def members(session: Session, ref: str | int) -> list[MemberRead]:
    project = resolve(session, ref)
    tokens = TokenRepository(session)
    out = []
    for member in ProjectRepository(session).members(project.id):
        token = tokens.get(member.token_id)
        out.append(
            MemberRead(
                project_id=project.id,
                token_id=member.token_id,
                token_name=token.name if token is not None else "",
                role=member.role,
            )
        )
    return out


def visible_filter(
    session: Session, access: Access, ref: str | int | None
) -> frozenset[int] | None:
    """The projects a listing shows: the one asked for (if the caller sees it), else all
    the caller sees (None: every project)."""
    if ref is not None and str(ref).strip():
        return frozenset({resolve_visible(session, access, ref).id})
    return access.visible_projects()


def check_visible_studies(
    session: Session, access: Access, study_ids: list[int], field: str, indexed: bool = False
) -> None:
    """Refuses study ids of a body that the caller may not see, as if they did not exist."""
    if access.everywhere:
        return
    visible = visible_study_ids(session, access, study_ids)
    for position, study_id in enumerate(study_ids):
        if study_id not in visible:
            where = f"{field}.{position}" if indexed else field
            raise Invalid(f"study {study_id} not found", field=where)


def visible_lineage(session: Session, access: Access, read: LineageRead) -> LineageRead:
    """A study's lineage without the parents and children the caller may not see."""
    if access.visible_projects() is None:
        return read
    refs = [ref.id for ref in [*read.ancestors, *read.children]]
    if read.parent_study_id is not None:
        refs.append(read.parent_study_id)
    shown = visible_study_ids(session, access, refs)
    read.ancestors = [ref for ref in read.ancestors if ref.id in shown]
    read.children = [ref for ref in read.children if ref.id in shown]
    if read.parent_study_id is not None and read.parent_study_id not in shown:
        read.parent_study_id = None
    return read
