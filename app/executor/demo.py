"""`tunelab serve --demo`: on an empty database, a study that trains real models at once."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from app.db.session import Database
from app.studies import service as studies
from app.studies.schemas import StudyCreate

log = logging.getLogger("tunelab.demo")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sklearn_digits"


def demo_body() -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load((EXAMPLE / "study.yaml").read_text())
    body["name"] = "Demo: digits MLP with ASHA"
    # This interpreter has scikit-learn; an absolute path works from any folder.
    body["execution"]["command"] = [sys.executable, str(EXAMPLE / "train.py")]
    body["limits"] = {"max_trials": 30, "max_parallel_trials": 2, "heartbeat_timeout_s": 60}
    body["tags"] = {"demo": True}
    return body


def seed_demo(database: Database) -> int | None:
    """Creates the demo study unless the database holds a study already."""
    with database.session() as session:
        _, total = studies.list_studies(session, 0, 1, None)
        if total:
            return None
        study = studies.create_study(session, StudyCreate.model_validate(demo_body()), actor="demo")
        log.info("demo study %s created", study.id)
        return study.id
