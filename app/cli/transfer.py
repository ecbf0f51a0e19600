"""`tunelab export STUDY -o FILE` and `tunelab import FILE`: move a study between servers.

Straight from and into a database (--database-url, or the embedded default), or through a
running server's API (--url, with TUNELAB_TOKEN; --api-url is the same flag's earlier
name); an import through the API is streamed as NDJSON lines, so that a study of any size
gets past the API's body size limit."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from app.cli import remote
from app.cli.server import settings_from

# A whole study travels in one request: give the server time to read or write it.
TIMEOUT_S = 300.0


def register(commands: Any) -> None:
    export = commands.add_parser("export", help="write a study, with everything it holds, to JSON")
    export.add_argument("study_id", type=int, metavar="STUDY")
    export.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    _source_arguments(export)
    export.set_defaults(handler=run_export)

    imported = commands.add_parser(
        "import",
        help="create a study from an export, or from an Optuna study",
        description="tunelab import FILE: a Tunelab export. tunelab import optuna --storage "
        "URL --study NAME: an Optuna study, with its trials, continued by --strategy.",
    )
    imported.add_argument(
        "file", metavar="FILE", help="an export ('-' for stdin), or the word optuna"
    )
    _source_arguments(imported)
    optuna = imported.add_argument_group("from Optuna (tunelab import optuna ...)")
    optuna.add_argument("--storage", default=None, help="the Optuna storage URL")
    optuna.add_argument("--study", dest="optuna_study", default=None, help="its study name")
    optuna.add_argument("--strategy", default=None, help="how the study goes on (default: tpe)")
    optuna.add_argument("--name", default=None, help="the new study's name (default: Optuna's)")
    optuna.add_argument(
        "--more-trials", type=int, default=20, help="new trials after the imported (default 20)"
    )
    optuna.add_argument("--max-parallel-trials", type=int, default=1)
    optuna.add_argument("--project", default=None, help="the project to create the study in")
    imported.set_defaults(handler=run_import)


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="work on this database directly")
    parser.add_argument("--data-dir", default=None)
    remote.add_url_argument(
        parser,
        help="go through this server's API instead (token: TUNELAB_TOKEN)",
        api_url_alias=True,
    )


def export_document(args: argparse.Namespace) -> dict[str, Any]:
    if args.url:
        with remote.connect(args.url, timeout_s=TIMEOUT_S) as client:
            return dict(client.request("GET", f"/studies/{args.study_id}/export"))
    from app.db.session import Database
    from app.transfer.service import export_study

    database = Database(settings_from(args).resolved_database_url)
    try:
        with database.session() as session:
            return export_study(session, args.study_id)
    finally:
        database.dispose()


def run_export(args: argparse.Namespace) -> int:
    from app.core.errors import ApiError

    try:
        document = export_document(args)
    except ApiError as exc:
        print(f"tunelab export: {exc.detail}", file=sys.stderr)
        return 1
    text = json.dumps(document, allow_nan=False)
    if args.output == "-":
        print(text)
    else:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(
            f"study {args.study_id}: {len(document['trials'])} trials written to {args.output}",
            file=sys.stderr,
        )
    return 0


def run_import(args: argparse.Namespace) -> int:
    from app.core.errors import ApiError

    if args.file == "optuna":
        return run_import_optuna(args)
    if args.file == "-":
        document = json.load(sys.stdin)
    else:
        with open(args.file, encoding="utf-8") as handle:
            document = json.load(handle)
    if args.url:
        from app.transfer.service import document_lines

        # Streamed line by line: a study of any size gets past the API's body size limit,
        # and the server stores it in one transaction (all of it, or nothing). A stream
        # cannot be replayed, so it is sent once.
        lines = (f"{line}\n".encode() for line in document_lines(document))
        with remote.connect(args.url, timeout_s=TIMEOUT_S) as client:
            created = client.request(
                "POST",
                "/studies/import/stream",
                content=lines,
                headers={"Content-Type": "application/x-ndjson"},
            )
            study_id = created["id"]
    else:
        from app.db.migrate import upgrade
        from app.db.session import Database
        from app.transfer.service import import_study

        url = settings_from(args).resolved_database_url
        upgrade(url)
        database = Database(url)
        try:
            with database.session() as session:
                study_id = import_study(session, document).id
        except ApiError as exc:
            print(f"tunelab import: {exc.field}: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            database.dispose()
    print(study_id)
    print(f"imported as study {study_id}", file=sys.stderr)
    return 0


def run_import_optuna(args: argparse.Namespace) -> int:
    """The Optuna study is read here, with Optuna; the server (or database) gets its
    document, so it never needs to reach the Optuna storage itself."""
    from pydantic import ValidationError

    from app.core.errors import ApiError
    from tunelab.integrations.optuna import load

    if not args.storage or not args.optuna_study:
        print("tunelab import optuna: give --storage URL and --study NAME", file=sys.stderr)
        return 2
    try:
        document = load(args.storage, args.optuna_study)
    except KeyError:  # Optuna's answer for a study name the storage lacks
        print(
            f"tunelab import optuna: no study {args.optuna_study!r} in {_shown(args.storage)}",
            file=sys.stderr,
        )
        return 1
    except Exception as exc:  # any failure to open the storage is one line, not a traceback
        print(f"tunelab import optuna: cannot open {_shown(args.storage)}: {exc}", file=sys.stderr)
        return 1
    body: dict[str, Any] = {
        "study": document,
        "more_trials": args.more_trials,
        "max_parallel_trials": args.max_parallel_trials,
    }
    if args.name:
        body["name"] = args.name
    if args.strategy:
        body["strategy"] = {"name": args.strategy}
    if args.url:
        with remote.connect(args.url, timeout_s=TIMEOUT_S) as client:
            params = {"project": args.project} if args.project else None
            created = client.request("POST", "/studies/import/optuna", json=body, params=params)
        study_id, counts = created["id"], created["tags"]["optuna"]["imported"]
    else:
        from app.db.migrate import upgrade
        from app.db.session import Database
        from app.projects import service as projects
        from app.transfer.optuna import import_optuna
        from app.transfer.schemas import OptunaImport

        url = settings_from(args).resolved_database_url
        upgrade(url)
        database = Database(url)
        try:
            request = OptunaImport.model_validate(body)
            with database.session() as session:
                project_id = projects.resolve(session, args.project).id if args.project else None
                study = import_optuna(session, request, project_id)
                study_id, counts = study.id, study.tags["optuna"]["imported"]
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(part) for part in first["loc"])
            print(f"tunelab import optuna: {at}: {first['msg']}", file=sys.stderr)
            return 1
        except ApiError as exc:
            print(f"tunelab import optuna: {exc.field}: {exc.detail}", file=sys.stderr)
            return 1
        finally:
            database.dispose()
    print(study_id)
    skipped = (
        f", {counts['skipped']} still running or waiting left out" if counts["skipped"] else ""
    )
    print(
        f"imported Optuna study {args.optuna_study!r} as study {study_id}: "
        f"{counts['trials']} trials{skipped}",
        file=sys.stderr,
    )
    return 0


def _shown(storage: str) -> str:
    """A storage URL as printed: without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(storage).render_as_string(hide_password=True)
    except ArgumentError:
        return storage
