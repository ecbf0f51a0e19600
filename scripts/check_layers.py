"""AGENTS.md's layer rules, checked on the syntax tree (run by scripts/lint):

- engine-imports: `app/engine/` imports neither SQLAlchemy, FastAPI, Starlette nor an
  HTTP client (httpx, requests, urllib.request, http.client, aiohttp);
- sql-outside-repository: SQL is built (`select(`, `insert(`, `update(`, `delete(`,
  `text(` of SQLAlchemy) only in `repository.py` files, `app/db/` and `migrations/`;
- commit-outside-unit-of-work: `.commit()` is called only in `app/db/session.py`, the
  unit of work (background jobs use `Database.session()`);
- repository-in-endpoint: an `endpoints.py` reaches repositories only through a service;
- sdk-imports: `tunelab/` imports only the standard library, httpx and itself.

    python scripts/check_layers.py [ROOT]     # prints path:line: rule: message; exit 1 if any
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

CHECKED_DIRS = ("app", "tunelab", "worker")
SQL_BUILDERS = frozenset({"select", "insert", "update", "delete", "text"})
ENGINE_FORBIDDEN = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "httpx",
    "requests",
    "urllib.request",
    "http.client",
    "aiohttp",
)
SDK_ALLOWED = frozenset({"httpx", "tunelab"})
UNIT_OF_WORK = "app/db/session.py"


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.rule}: {self.message}"


def _imported_modules(tree: ast.AST) -> Iterator[tuple[int, list[str]]]:
    """(line, modules) of every absolute import statement; `from a import b` names both
    `a` and `a.b`, since b may be a module (`from urllib import request`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield node.lineno, [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, [node.module, *(f"{node.module}.{a.name}" for a in node.names)]


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _sqlalchemy_names(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Local names bound to SQLAlchemy's SQL builders, and to SQLAlchemy modules."""
    builders: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _within(node.module, "sqlalchemy"):
            for alias in node.names:
                if alias.name in SQL_BUILDERS:
                    builders.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if _within(alias.name, "sqlalchemy"):
                    modules.add(alias.asname or alias.name.split(".")[0])
    return builders, modules


def _called_name(call: ast.Call) -> tuple[str | None, str]:
    """(the object's name or None, the called name) of `f(...)` or `obj.f(...)`."""
    func = call.func
    if isinstance(func, ast.Name):
        return None, func.id
    if isinstance(func, ast.Attribute):
        owner = func.value.id if isinstance(func.value, ast.Name) else ""
        return owner, func.attr
    return None, ""


def _calls(tree: ast.AST) -> Iterator[ast.Call]:
    return (node for node in ast.walk(tree) if isinstance(node, ast.Call))


def check_engine_imports(path: str, tree: ast.AST) -> Iterator[Violation]:
    if not path.startswith("app/engine/"):
        return
    for line, modules in _imported_modules(tree):
        banned = [m for m in modules if any(_within(m, f) for f in ENGINE_FORBIDDEN)]
        if banned:
            yield Violation(path, line, "engine-imports", f"the engine must not import {banned[0]}")


def check_sql_outside_repository(path: str, tree: ast.AST) -> Iterator[Violation]:
    posix = PurePosixPath(path)
    if posix.name == "repository.py" or path.startswith(("app/db/", "migrations/")):
        return
    builders, modules = _sqlalchemy_names(tree)
    for call in _calls(tree):
        owner, name = _called_name(call)
        if (owner is None and name in builders) or (owner in modules and name in SQL_BUILDERS):
            yield Violation(
                path,
                call.lineno,
                "sql-outside-repository",
                f"{name}() builds SQL: move the query into a repository.py",
            )


def check_commit_outside_unit_of_work(path: str, tree: ast.AST) -> Iterator[Violation]:
    if path == UNIT_OF_WORK:
        return
    for call in _calls(tree):
        owner, name = _called_name(call)
        if name == "commit" and owner is not None:
            yield Violation(
                path,
                call.lineno,
                "commit-outside-unit-of-work",
                "commit() outside the unit of work: endpoints use unit_of_work(), "
                "background jobs Database.session()",
            )


def check_repository_in_endpoint(path: str, tree: ast.AST) -> Iterator[Violation]:
    if PurePosixPath(path).name != "endpoints.py":
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name.endswith("Repository"):
                    yield Violation(
                        path,
                        node.lineno,
                        "repository-in-endpoint",
                        f"{alias.name} in an endpoint: call a service function instead",
                    )


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports_on_import(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The import statements that run when the module is imported: not those inside a
    function (an optional extra imported when used) or under `if TYPE_CHECKING:`."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                yield from _imports_on_import(node.body)
            yield from _imports_on_import(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _imports_on_import(block)
            for handler in node.handlers:
                yield from _imports_on_import(handler.body)
        elif isinstance(node, ast.ClassDef | ast.With):
            yield from _imports_on_import(node.body)


def check_sdk_imports(path: str, tree: ast.AST) -> Iterator[Violation]:
    """Optional extras (pandas for `Study.dataframe`) may be imported inside the function
    that needs them: the package itself must import with the standard library and httpx."""
    if not path.startswith("tunelab/") or not isinstance(tree, ast.Module):
        return
    for node in _imports_on_import(tree.body):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        for module in modules:
            top = module.split(".")[0]
            if top not in SDK_ALLOWED and top not in sys.stdlib_module_names:
                yield Violation(
                    path,
                    node.lineno,
                    "sdk-imports",
                    f"tunelab imports only the standard library and httpx, not {module}",
                )


RULES = (
    check_engine_imports,
    check_sql_outside_repository,
    check_commit_outside_unit_of_work,
    check_repository_in_endpoint,
    check_sdk_imports,
)


def check_source(path: str, source: str) -> list[Violation]:
    """The violations in one file; `path` is relative to the repository root, with `/`."""
    tree = ast.parse(source, filename=path)
    return [violation for rule in RULES for violation in rule(path, tree)]


def check_tree(root: Path) -> list[Violation]:
    violations: list[Violation] = []
    for folder in CHECKED_DIRS:
        for file in sorted((root / folder).rglob("*.py")):
            relative = file.relative_to(root).as_posix()
            violations += check_source(relative, file.read_text(encoding="utf-8"))
    return violations


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    violations = check_tree(root)
    for violation in violations:
        print(violation)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
