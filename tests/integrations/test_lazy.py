"""`tunelab.integrations` imports no framework until a callback is asked for, and says
what to install when the framework is missing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fixtures.services import ROOT

FRAMEWORKS = ("torch", "lightning", "pytorch_lightning", "transformers", "keras", "optuna")


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_importing_the_integrations_imports_no_framework():
    done = run(
        "import sys, tunelab, tunelab.client\n"
        "from tunelab.integrations import keras, lightning, optuna, transformers\n"
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("module", "blocked", "hint"),
    [
        ("lightning", ("lightning", "pytorch_lightning"), "pip install lightning"),
        ("transformers", ("transformers",), "pip install transformers"),
        ("keras", ("keras",), "pip install keras"),
    ],
)
def test_a_missing_framework_names_what_to_install(module, blocked, hint):
    block = "".join(f"sys.modules[{name!r}] = None\n" for name in blocked)
    done = run(f"import sys\n{block}from tunelab.integrations.{module} import TunelabCallback")
    assert done.returncode == 1 and hint in done.stderr.splitlines()[-1]
