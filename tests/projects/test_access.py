"""A caller's role per project: the higher of its own role and the one granted there."""

from __future__ import annotations

from app.auth.models import Role
from app.projects.access import Access, everything


def test_a_token_of_projects_sees_only_them() -> None:
    access = Access(Role.NONE, {1: Role.MEMBER, 2: Role.VIEWER})
    assert access.role_in(1) == Role.MEMBER and access.role_in(2) == Role.VIEWER
    assert access.role_in(0) is None and not access.sees(3)
    assert access.visible_projects() == frozenset({1, 2})
    assert access.best_role == Role.MEMBER
    assert access.can(1, Role.MEMBER) and not access.can(2, Role.MEMBER)


def test_a_role_of_its_own_holds_everywhere_and_a_grant_can_raise_it() -> None:
    access = Access(Role.VIEWER, {5: Role.ADMIN})
    assert access.everywhere and access.visible_projects() is None
    assert access.role_in(0) == Role.VIEWER and access.role_in(5) == Role.ADMIN
    # A grant below the token's own role does not lower it.
    assert Access(Role.MEMBER, {5: Role.VIEWER}).role_in(5) == Role.MEMBER
    assert everything().can(123, Role.ADMIN)


def test_a_trial_token_sees_no_project_by_itself() -> None:
    assert not Access(Role.TRIAL).everywhere
    assert Access(Role.TRIAL).role_in(0) is None
