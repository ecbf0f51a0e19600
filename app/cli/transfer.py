"""`tunelab export STUDY -o FILE` and `tunelab import FILE`: move a study between servers.

Straight from and into a database (--database-url, or the embedded default), or through a
running server's API (--api-url, with TUNELAB_TOKEN); an import through the API is streamed
as NDJSON lines, so that a study of any size gets past the API's body size limit."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from app.cli.server import settings_from


def register(commands: Any) -> None:
    export = commands.add_parser("export", help="write a study, with everything it holds, to JSON")
    export.add_argument("study_id", type=int, metavar="STUDY")
    export.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    _source_arguments(export)
    export.set_defaults(handler=run_export)

    imported = commands.add_parser("import", help="create a study from an export")
    imported.add_argument("file", metavar="FILE", help="an export ('-' for stdin)")
    _source_arguments(imported)
    imported.set_defaults(handler=run_import)


def _source_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database-url", default=None, help="work on this database directly")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument(
        "--api-url", default=None, help="go through this server's API (token: TUNELAB_TOKEN)"
    )


def _http(api_url: str) -> Any:
    import httpx

    token = os.environ.get("TUNELAB_TOKEN")
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=api_url.rstrip("/") + "/api/v1", headers=headers, timeout=300)


def _fail(response: Any) -> int:
    print(f"tunelab: {response.status_code} {response.text}", file=sys.stderr)
    return 1


def export_document(args: argparse.Namespace) -> dict[str, Any] | None:
    if args.api_url:
        with _http(args.api_url) as client:
            response = client.get(f"/studies/{args.study_id}/export")
            if response.status_code != 200:
                _fail(response)
                return None
            return dict(response.json())
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
    if document is None:
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

    if args.file == "-":
        document = json.load(sys.stdin)
    else:
        with open(args.file, encoding="utf-8") as handle:
            document = json.load(handle)
    if args.api_url:
        from app.transfer.service import document_lines

        # Streamed line by line: a study of any size gets past the API's body size limit,
        # and the server stores it in one transaction (all of it, or nothing).
        lines = (f"{line}\n".encode() for line in document_lines(document))
        with _http(args.api_url) as client:
            response = client.post(
                "/studies/import/stream",
                content=lines,
                headers={"Content-Type": "application/x-ndjson"},
            )
            if response.status_code != 201:
                return _fail(response)
            study_id = response.json()["id"]
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
