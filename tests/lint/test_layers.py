"""scripts/check_layers.py: each rule reports a bad snippet, leaves a good one alone, and
the repository itself is clean."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "check_layers.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_layers", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


layers = _load()


def rules(path: str, source: str) -> list[str]:
    return [v.rule for v in layers.check_source(path, source)]


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy\n",
        "from sqlalchemy.orm import Session\n",
        "from fastapi import HTTPException\n",
        "import starlette.requests\n",
        "import httpx\n",
        "import requests\n",
        "import urllib.request\n",
        "from urllib import request\n",
        "def f():\n    import httpx\n",
    ],
)
def test_engine_must_not_import_the_database_web_or_http_clients(source: str) -> None:
    assert rules("app/engine/samplers/new.py", source) == ["engine-imports"]


def test_engine_may_import_the_standard_library_and_itself() -> None:
    source = "import math\nimport urllib.parse\nfrom app.engine.base import History\n"
    assert rules("app/engine/samplers/new.py", source) == []
    # The same imports elsewhere are fine.
    assert rules("app/trials/service.py", "from sqlalchemy.orm import Session\n") == []


@pytest.mark.parametrize(
    "source",
    [
        "from sqlalchemy import select\nselect(Trial)\n",
        "from sqlalchemy import text\nsession.execute(text('SELECT 1'))\n",
        "from sqlalchemy import update as sql_update\nsql_update(Study).values(x=1)\n",
        "from sqlalchemy.dialects.postgresql import insert\ninsert(MetricPoint)\n",
        "import sqlalchemy as sa\nsa.delete(Trial)\n",
    ],
)
def test_sql_is_built_only_in_repositories(source: str) -> None:
    assert rules("app/trials/service.py", source) == ["sql-outside-repository"]
    assert rules("app/trials/repository.py", source) == []
    assert rules("app/db/types.py", source) == []


def test_methods_named_like_sql_builders_are_not_sql() -> None:
    source = "body.update(changes)\nprogress.update(1)\nrepo.delete(study)\nselect = 3\n"
    assert rules("app/followups/common.py", source) == []


def test_commit_only_in_the_unit_of_work() -> None:
    source = "def f(session):\n    session.commit()\n"
    assert rules("app/trials/endpoints.py", source) == ["commit-outside-unit-of-work"]
    assert rules("app/trials/service.py", "self.session.commit()\n") == [
        "commit-outside-unit-of-work"
    ]
    assert rules("app/db/session.py", source) == []


def test_endpoints_reach_repositories_through_services() -> None:
    source = "from app.trials.repository import TrialRepository\n"
    assert rules("app/trials/endpoints.py", source) == ["repository-in-endpoint"]
    assert rules("app/trials/service.py", source) == []
    assert rules("app/trials/endpoints.py", "from app.trials.repository import ORDERINGS\n") == []


@pytest.mark.parametrize(
    "source", ["import numpy\n", "from pydantic import BaseModel\n", "import app.engine\n"]
)
def test_sdk_imports_only_the_standard_library_and_httpx(source: str) -> None:
    assert rules("tunelab/client.py", source) == ["sdk-imports"]


def test_sdk_may_import_optional_extras_where_they_are_used() -> None:
    source = (
        "from __future__ import annotations\n"
        "import json\nimport httpx\nfrom tunelab.transport import Transport\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import pandas as pd\n"
        "def frame():\n    import pandas as pd\n    return pd\n"
    )
    assert rules("tunelab/client.py", source) == []


def test_the_repository_is_clean() -> None:
    violations = layers.check_tree(ROOT)
    assert violations == [], "\n".join(str(v) for v in violations)


def test_the_script_fails_on_a_violation(tmp_path: Path) -> None:
    (tmp_path / "app" / "engine").mkdir(parents=True)
    (tmp_path / "app" / "engine" / "bad.py").write_text("import sqlalchemy\n")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "app/engine/bad.py:1: engine-imports" in result.stdout
