"""The `tunelab` command. Each module of this package registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.cli import projects, remote, report, server, studies, tokens, transfer, webhooks, worker
from tunelab.transport import TunelabError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunelab", description="Hyperparameter tuning studies.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (server, tokens, projects, worker, studies, report, transfer, webhooks):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.handler(args)
    except TunelabError as error:
        # A refused call or an unreachable server is one line, never a traceback.
        print(f"tunelab {args.command}: error: {remote.describe(error)}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
