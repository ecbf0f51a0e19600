"""A server for the object-level authorization run (test_object_authorization.py):
the app with authentication on, on SQLite, seeded with two projects, a token, a study and
a trial in each. `--leak` switches the projects check off, for the control run that shows
the schemathesis check catches what it is there for.

    python -m tests.fuzz.bola_server DATA_DIR PORT [--leak]

Prints one JSON line ({"alpha": token, "beta": token}) once it serves."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import httpx
import uvicorn

from app.db.migrate import upgrade
from app.db.session import Database
from app.main import create_app
from app.projects import service as projects
from app.settings import Settings
from tests.fixtures.studies import study_body

ADMIN = "bola-admin-token-0123456789abcdef"


def main() -> None:
    root, port, leak = Path(sys.argv[1]), int(sys.argv[2]), "--leak" in sys.argv
    url = f"sqlite:///{root / 'bola.db'}"
    upgrade(url)
    if leak:
        projects.check_path = lambda *args, **kwargs: None  # type: ignore[assignment]
    settings = Settings(
        data_dir=root, database_url=url, reaper_interval_s=3600, auth="required", admin_token=ADMIN
    )
    app = create_app(settings, Database(url))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    base = f"http://127.0.0.1:{port}/api/v1"
    for _ in range(200):
        try:
            httpx.get(f"{base}/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.05)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    tokens = {}
    for name in ("alpha", "beta"):
        httpx.post(f"{base}/projects", json={"name": name}, headers=admin).raise_for_status()
        made = httpx.post(f"{base}/tokens", json={"role": "member", "project": name}, headers=admin)
        tokens[name] = made.json()["token"]
        mine = {"Authorization": f"Bearer {tokens[name]}"}
        for n in range(2):
            study = httpx.post(
                f"{base}/studies", json=study_body(name=f"{name} {n}"), headers=mine
            ).json()
            trial = httpx.post(f"{base}/studies/{study['id']}/trials", headers=mine).json()
            httpx.post(
                f"{base}/trials/{trial['id']}/metrics",
                json=[{"name": "loss", "step": 1, "value": 0.5}],
                headers=mine,
            ).raise_for_status()
    print(json.dumps(tokens), flush=True)
    while server.started or not server.should_exit:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
