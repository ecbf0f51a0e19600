"""The lifecycle is the one writer of what a strategy sees on a trial and of the study's
budget and change marker: no other module of the server assigns them."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"
# Written only where a Change (app/engine/lifecycle.py) is applied: to the rows, and to the
# in-memory records the strategy contract suite runs on.
GUARDED = {
    "budget_used",
    "history_version",
    "value",
    "budget",
    "rung",
    "extra",
    "retries",
    "resumes",
}
WRITERS = {"trials/lifecycle.py", "engine/memory.py"}


def _assigned_attributes(tree: ast.AST) -> list[tuple[str, int]]:
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        found += [(t.attr, node.lineno) for t in targets if isinstance(t, ast.Attribute)]
    return found


def test_only_the_lifecycle_writes_what_strategies_see():
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        relative = path.relative_to(APP).as_posix()
        if relative in WRITERS:
            continue
        for name, line in _assigned_attributes(ast.parse(path.read_text())):
            if name in GUARDED:
                offenders.append(f"app/{relative}:{line} assigns .{name}")
    assert not offenders, "\n".join(offenders)
