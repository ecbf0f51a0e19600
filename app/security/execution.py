"""Validation of a study's execution spec, shared by the API (at study creation) and the
worker (again, just before it launches a trial on its own machine).

The command itself is the study creator's choice (members and admins only); these checks
keep the rest of the spec from reaching further than the command: no loader or interpreter
hooks through the environment, no overriding the variables Tunelab sets for the trial, and
no working folder outside the configured roots."""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
MAX_ENV_VARS = 200
MAX_ENV_VALUE = 32 * 1024

# Variables that make the dynamic loader, an interpreter or a shell run other code than
# the command names, or that Tunelab sets for the trial itself.
DENIED_ENV = frozenset(
    {
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONINSPECT",
        "PYTHONUSERBASE",
        "PERL5LIB",
        "PERL5OPT",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "NODE_OPTIONS",
        "NODE_PATH",
        "BASH_ENV",
        "ENV",
        "IFS",
        "SHELLOPTS",
        "PS4",
        "GCONV_PATH",
        "HOSTALIASES",
        "CUDA_VISIBLE_DEVICES",
        "PYTHONUNBUFFERED",
    }
)
DENIED_ENV_PREFIXES = ("LD_", "DYLD_", "TUNELAB_")


class ExecutionError(ValueError):
    """A rejected execution setting; `field` is its path inside `execution`."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


def check_env(env: Mapping[str, str]) -> dict[str, str]:
    if len(env) > MAX_ENV_VARS:
        raise ExecutionError("env", f"has {len(env)} variables; at most {MAX_ENV_VARS}")
    for name, value in env.items():
        if not ENV_NAME.fullmatch(name):
            raise ExecutionError(
                f"env.{name}", f"{name!r}: a variable name is upper-case letters, digits and '_'"
            )
        if name in DENIED_ENV or name.startswith(DENIED_ENV_PREFIXES):
            raise ExecutionError(
                f"env.{name}", f"{name} cannot be set by a study: it would change what runs"
            )
        if len(value) > MAX_ENV_VALUE or "\x00" in value:
            raise ExecutionError(
                f"env.{name}", f"{name}: a value has at most {MAX_ENV_VALUE} characters and no NUL"
            )
    return dict(env)


def default_roots(data_dir: Path | None = None) -> list[Path]:
    """Without TUNELAB_WORKDIR_ROOTS: the user's home, the temp folder and the data dir."""
    roots = [Path.home(), Path(tempfile.gettempdir())]
    if data_dir is not None:
        roots.append(data_dir)
    return roots


def parse_roots(configured: str, data_dir: Path | None = None) -> list[Path]:
    roots = [Path(part) for part in configured.split(os.pathsep) if part.strip()]
    return roots or default_roots(data_dir)


def check_working_dir(working_dir: str, roots: Iterable[Path]) -> str:
    """The folder must be absolute and lie, symlinks resolved, under one of the roots."""
    if "\x00" in working_dir:
        raise ExecutionError("working_dir", "must not contain NUL")
    path = Path(working_dir)
    if not path.is_absolute():
        raise ExecutionError("working_dir", "must be an absolute path")
    resolved = Path(os.path.realpath(path))
    allowed = [Path(os.path.realpath(root)) for root in roots]
    if not any(resolved == root or root in resolved.parents for root in allowed):
        shown = os.pathsep.join(str(root) for root in allowed)
        raise ExecutionError(
            "working_dir",
            f"{working_dir} is outside the allowed roots ({shown}); set TUNELAB_WORKDIR_ROOTS",
        )
    return working_dir


def configured_roots() -> list[Path]:
    """The roots from this process's settings (TUNELAB_WORKDIR_ROOTS, TUNELAB_DATA_DIR)."""
    from app.settings import get_settings

    settings = get_settings()
    return parse_roots(settings.workdir_roots, settings.data_dir)
