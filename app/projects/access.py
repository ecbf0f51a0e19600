"""What one caller may do, project by project. Pure: built once per request from the
token and its grants, then asked by the guard and by the few endpoints that act on
studies named in a body or a list (create, import, warm-start parents, listings)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.auth.models import Role


@dataclass(frozen=True)
class Access:
    # The token's own role, which holds in every project (NONE for a token that only has
    # the projects granted to it).
    global_role: Role
    # Roles granted per project id; the higher of this and `global_role` counts.
    project_roles: Mapping[int, Role] = field(default_factory=dict)

    @property
    def everywhere(self) -> bool:
        """Whether the caller sees every project (a role of its own of viewer or more)."""
        return self.global_role != Role.TRIAL and self.global_role.rank >= Role.VIEWER.rank

    def role_in(self, project_id: int) -> Role | None:
        """The caller's role in the project, or None when it may not even see it."""
        granted = self.project_roles.get(project_id)
        own = self.global_role if self.everywhere else None
        if granted is None:
            return own
        if own is None or granted.rank > own.rank:
            return granted
        return own

    def can(self, project_id: int, role: Role) -> bool:
        found = self.role_in(project_id)
        return found is not None and found.rank >= role.rank

    def sees(self, project_id: int) -> bool:
        return self.role_in(project_id) is not None

    def visible_projects(self) -> frozenset[int] | None:
        """The ids of the projects the caller sees; None for all of them."""
        if self.everywhere:
            return None
        return frozenset(self.project_roles)

    @property
    def best_role(self) -> Role:
        """The highest role the caller has anywhere (for routes that name no project)."""
        best = self.global_role
        for role in self.project_roles.values():
            if role.rank > best.rank:
                best = role
        return best


def everything() -> Access:
    """The access of the anonymous local user, the bootstrap admin and background jobs."""
    return _EVERYTHING


_EVERYTHING = Access(global_role=Role.ADMIN)
