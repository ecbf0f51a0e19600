"""`tunelab serve` and `tunelab db upgrade`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from app.settings import Settings


def register(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the API and dashboard")
    serve.add_argument("--host", default=None, help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=None, help="port (default 8000)")
    serve.add_argument(
        "--database-url", default=None, help="SQLAlchemy URL; default: a SQLite file"
    )
    serve.add_argument("--broker", default=None, help="redis:// URL of the Celery broker")
    serve.add_argument(
        "--data-dir", default=None, help="where the embedded default keeps its files"
    )
    serve.add_argument(
        "--demo", action="store_true", help="start a demo study on an empty database"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="API processes (default 1); more than one needs PostgreSQL and Redis",
    )
    serve.add_argument("--log-level", default="info")
    serve.add_argument(
        "--access-log",
        action="store_true",
        help="print one line per HTTP request (off by default: the dashboard and the "
        "workers make many requests a second, which would bury everything else)",
    )
    serve.set_defaults(handler=run_serve)

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_commands.add_parser("upgrade", help="apply migrations")
    upgrade.add_argument("--database-url", default=None)
    upgrade.add_argument("--revision", default="head")
    upgrade.set_defaults(handler=run_upgrade)


def settings_from(args: argparse.Namespace) -> Settings:
    """Command-line flags win over TUNELAB_* variables and `.env`."""
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "database_url": getattr(args, "database_url", None),
        "broker_url": getattr(args, "broker", None),
        "data_dir": getattr(args, "data_dir", None),
        "demo": True if getattr(args, "demo", False) else None,
        "workers": getattr(args, "workers", None),
    }
    for key, value in overrides.items():
        if value is not None:
            os.environ[f"TUNELAB_{key.upper()}"] = str(value)
    return Settings()


def run_upgrade(args: argparse.Namespace) -> int:
    from app.db.migrate import upgrade

    settings = settings_from(args)
    upgrade(settings.resolved_database_url, args.revision)
    print(f"database at {settings.resolved_database_url} is at revision {args.revision}")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.db.migrate import upgrade

    settings = settings_from(args)
    problem = workers_problem(settings)
    if problem:
        print(f"tunelab serve: {problem}", file=sys.stderr)
        return 2
    upgrade(settings.resolved_database_url)
    from app.auth.startup import startup_problem

    problem = startup_problem(settings)
    if problem:
        print(f"tunelab serve: {problem}", file=sys.stderr)
        return 2
    if not os.environ.get("TUNELAB_API_URL"):
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
        os.environ["TUNELAB_API_URL"] = f"http://{host}:{settings.port}"
    # A served API runs studies' trials unless TUNELAB_RUN_TRIALS=false says otherwise.
    os.environ.setdefault("TUNELAB_RUN_TRIALS", "true")
    settings = Settings()
    print(
        f"Tunelab on http://{settings.host}:{settings.port}  (database: {settings.resolved_database_url})"
    )
    if settings.workers > 1:
        # Each worker process builds its app from the same TUNELAB_* environment.
        uvicorn.run(
            "app.main:create_app",
            factory=True,
            workers=settings.workers,
            host=settings.host,
            port=settings.port,
            log_level=args.log_level,
            access_log=args.access_log,
        )
        return 0
    from app.main import create_app

    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=args.log_level,
        access_log=args.access_log,
    )
    return 0


def workers_problem(settings: Settings) -> str | None:
    """Why this many API processes cannot serve these settings, if they cannot."""
    if settings.workers < 1:
        return "--workers must be at least 1"
    if settings.workers == 1:
        return None
    if settings.is_sqlite:
        return "--workers above 1 needs PostgreSQL (--database-url): SQLite has one writer"
    if not (settings.redis_url or settings.broker_url):
        return (
            "--workers above 1 needs Redis (TUNELAB_REDIS_URL or --broker): live views "
            "hear another process's changes through it"
        )
    return None
