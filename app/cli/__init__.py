"""The `tunelab` command. Each module of this package registers its own subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.cli import report, server, studies, tokens, transfer, worker


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunelab", description="Hyperparameter tuning studies.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (server, tokens, worker, studies, report, transfer):
        module.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.handler(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
