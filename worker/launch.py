"""What a trial's process gets: its argv, its environment, and how its lines become metrics."""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import re2

from app.security.execution import ExecutionError, check_working_dir, parse_roots

# `{name}` placeholders of a template command; other braces (JSON, shell-like text) stay.
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.\-]*)\}")


def format_value(value: Any) -> str:
    """A hyperparameter as a command-line word: integral budgets print as `3`, not `3.0`,
    because scripts declare their epochs with `type=int`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def trial_values(
    params: Mapping[str, Any], fidelity_param: str | None, budget: float | None
) -> dict[str, Any]:
    values = dict(params)
    if fidelity_param and budget is not None:
        values[fidelity_param] = budget
    return values


# The interpreter Tunelab runs in. `python` alone means whatever is first on PATH, which
# for a server started as `.venv/bin/tunelab serve` is not the venv that has `tunelab`.
PYTHON_PLACEHOLDER = "{python}"


def resolve_python(command: Sequence[str]) -> list[str]:
    """`{python}` in any word of the command becomes this process's `sys.executable` (the
    server's for trials it runs itself, the worker's for a Celery worker)."""
    return [word.replace(PYTHON_PLACEHOLDER, sys.executable) for word in command]


def build_argv(
    command: Sequence[str],
    args: str,
    values: Mapping[str, Any],
    inactive: Collection[str] = (),
) -> list[str]:
    """Always a list for `exec`, never a shell string: a value can never become code.

    `inactive`: parameters of the space whose condition does not hold for this trial (so
    absent from `values`). In template mode a word holding one of their placeholders is
    left out, and so is the option word just before it: `--momentum={momentum}` and
    `--momentum {momentum}` both vanish when momentum is inactive, instead of handing the
    script a literal `{momentum}`."""
    if args == "template":

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            return format_value(values[name]) if name in values else match.group(0)

        argv: list[str] = []
        previous_is_option = False
        # `{python}` first, so that a hyperparameter named `python` cannot stand in for it.
        for word in resolve_python(command):
            names = _PLACEHOLDER.findall(word)
            if any(name in inactive and name not in values for name in names):
                if previous_is_option:
                    argv.pop()
                previous_is_option = False
                continue
            previous_is_option = word.startswith("-") and "=" not in word and not names
            argv.append(_PLACEHOLDER.sub(fill, word))
        return argv
    argv = resolve_python(command)
    for name, value in values.items():
        argv += [f"--{name}", format_value(value)]
    return argv


def build_env(
    *,
    base: Mapping[str, str],
    extra: Mapping[str, str],
    trial_id: int,
    api_url: str,
    params: Mapping[str, Any],
    budget: float | None,
    checkpoint_dir: Path,
    cuda_visible_devices: str | None,
) -> dict[str, str]:
    env = {**base, **extra}
    env.update(
        {
            "TUNELAB_TRIAL_ID": str(trial_id),
            "TUNELAB_API_URL": api_url,
            "TUNELAB_PARAMS": json.dumps(dict(params)),
            "TUNELAB_BUDGET": "" if budget is None else format_value(budget),
            "TUNELAB_CHECKPOINT_DIR": str(checkpoint_dir),
            # Without this Python buffers a piped stdout and metrics arrive in bursts.
            "PYTHONUNBUFFERED": "1",
        }
    )
    if cuda_visible_devices is not None:
        env["CUDA_VISIBLE_DEVICES"] = cuda_visible_devices
    return env


def checkpoint_dir(root: Path, study_id: int, trial_number: int) -> Path:
    """The same folder for every run of a trial, so a resumed trial finds its checkpoint."""
    path = root / f"study-{study_id}" / f"trial-{trial_number}"
    path.mkdir(parents=True, exist_ok=True)
    return path


class LaunchRefused(OSError):
    """A launch this worker refuses. An OSError, so that the runner fails the trial with the
    reason just as when the command cannot be started, and never launches it."""


def worker_roots() -> list[Path]:
    """This machine's allowed working folders: TUNELAB_WORKDIR_ROOTS (and TUNELAB_DATA_DIR)
    as the worker sees them, read at each launch rather than cached."""
    from app.settings import Settings

    settings = Settings()
    return parse_roots(settings.workdir_roots, settings.data_dir)


def checked_working_dir(
    execution: Mapping[str, Any], roots: Sequence[Path] | None = None
) -> str | None:
    """`execution.working_dir`, checked again against this worker's own roots: the server
    checked it at study creation against its roots, and a worker on another machine may
    allow less (or the folder may since have become a symlink to elsewhere)."""
    working_dir = execution.get("working_dir") or None
    if working_dir is None:
        return None
    try:
        return check_working_dir(str(working_dir), worker_roots() if roots is None else roots)
    except ExecutionError as exc:
        raise LaunchRefused(
            f"execution.{exc.field} refused by this worker: {exc.detail} (on the worker)"
        ) from exc


def worker_folder(override_env: str, name: str) -> Path:
    """A folder the worker keeps on local disk: the path in `override_env` when set, else
    `name` under TUNELAB_DATA_DIR (~/.tunelab by default)."""
    configured = os.environ.get(override_env)
    if configured:
        return Path(configured)
    data_dir = os.environ.get("TUNELAB_DATA_DIR")
    return (Path(data_dir) if data_dir else Path.home() / ".tunelab") / name


def default_checkpoint_root() -> Path:
    return worker_folder("TUNELAB_CHECKPOINT_ROOT", "checkpoints")


@dataclass
class _Definition:
    name: str
    pattern: Any  # re2._Regexp
    has_step: bool
    value_group: str | int
    count: int = 0


@dataclass
class MetricParser:
    """Applies the study's metric_definitions to console lines. RE2 matches in linear time,
    so a hostile or huge line cannot stall the runner."""

    definitions: list[_Definition] = field(default_factory=list)

    @classmethod
    def from_spec(cls, metric_definitions: Sequence[Mapping[str, str]]) -> MetricParser:
        parsed = []
        for definition in metric_definitions:
            pattern = re2.compile(definition["regex"])
            groups = pattern.groupindex
            parsed.append(
                _Definition(
                    name=definition["name"],
                    pattern=pattern,
                    has_step="step" in groups,
                    value_group="value" if "value" in groups else 1,
                )
            )
        return cls(parsed)

    def parse(self, line: str) -> list[tuple[str, float, float]]:
        points: list[tuple[str, float, float]] = []
        for definition in self.definitions:
            match = definition.pattern.search(line)
            if match is None:
                continue
            try:
                value = float(match.group(definition.value_group))
                if definition.has_step:
                    step = float(match.group("step"))
                else:
                    step = float(definition.count + 1)
            except (TypeError, ValueError):
                continue
            if not math.isfinite(step):
                continue
            definition.count += 1
            points.append((definition.name, step, value))
        return points
