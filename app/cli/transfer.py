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

    imported = commands.add_parser("import", help="create a study from an export")
    imported.add_argument("file", metavar="FILE", help="an export ('-' for stdin)")
    _source_arguments(imported)
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
