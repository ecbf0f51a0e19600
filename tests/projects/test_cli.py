"""`tunelab project ...` and `tunelab token create --project`, on the database itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.cli import main
from app.db.session import Database
from app.main import create_app
from app.settings import Settings
from tests.fixtures.studies import study_body


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_an_admin_manages_projects_from_the_cli(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ("--database-url", db_url)
    assert _cli(capsys, "project", "create", "vision", "--description", "images", *db)[0] == 0
    code, _, err = _cli(capsys, "project", "create", "vision", *db)
    assert code == 1 and "already exists" in err
    code, _, err = _cli(capsys, "project", "create", "9lives", *db)
    assert code == 1 and "starts with a letter" in err

    code, secret, err = _cli(
        capsys, "token", "create", "--role", "member", "--project", "vision", "--name", "cv", *db
    )
    assert code == 0 and secret.startswith("tl_") and "in project vision" in err
    secret = secret.strip()
    code, _, err = _cli(capsys, "token", "create", "--project", "nope", *db)
    assert code == 1 and "project 'nope' not found" in err

    code, viewer, _ = _cli(capsys, "token", "create", "--role", "viewer", *db)
    viewer = viewer.strip()
    code, listed, _ = _cli(capsys, "token", "list", *db)
    cv_id = next(int(line.split()[0]) for line in listed.splitlines() if line.endswith("@1"))
    viewer_id = next(int(line.split()[0]) for line in listed.splitlines() if "viewer" in line)

    code, out, _ = _cli(
        capsys, "project", "grant", str(viewer_id), "vision", "--role", "admin", *db
    )
    assert code == 0 and "admin in project vision" in out
    code, out, _ = _cli(capsys, "project", "members", "vision", *db)
    assert {tuple(line.split()[:2]) for line in out.splitlines()} == {
        (str(cv_id), "member"),
        (str(viewer_id), "admin"),
    }
    code, out, _ = _cli(capsys, "project", "list", *db)
    assert [line.split()[1] for line in out.splitlines()] == ["default", "vision"]

    # The server sees what the CLI wrote.
    settings = Settings(
        data_dir=tmp_path,
        database_url=db_url,
        broker_url="",
        auth="required",
        reaper_interval_s=3600,
    )
    database = Database(db_url)
    with TestClient(create_app(settings, database)) as client:
        made = client.post(
            "/api/v1/studies",
            json=study_body(),
            headers={"Authorization": f"Bearer {secret}"},
        )
        assert made.status_code == 201 and made.json()["project_id"] == 1
        sid = made.json()["id"]
        # Admin in vision: may delete there.
        deleted = client.delete(
            f"/api/v1/studies/{sid}", headers={"Authorization": f"Bearer {viewer}"}
        )
        assert deleted.status_code == 204
    database.dispose()

    assert _cli(capsys, "project", "revoke", str(viewer_id), "vision", *db)[0] == 0
    code, _, err = _cli(capsys, "project", "revoke", str(viewer_id), "vision", *db)
    assert code == 1 and "has no role" in err
    code, _, err = _cli(capsys, "project", "delete", "default", *db)
    assert code == 1 and "cannot be deleted" in err
    assert _cli(capsys, "project", "delete", "vision", *db)[0] == 0
    code, _, err = _cli(capsys, "project", "delete", "vision", *db)
    assert code == 1 and "not found" in err
