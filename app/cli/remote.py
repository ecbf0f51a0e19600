"""What the commands that talk to a server share: the `--url` flag and the client.

Every request goes through `tunelab.client.Client` and so through `tunelab.transport`;
a failed call raises `TunelabError`, which `tunelab`'s main turns into one line (an
unreachable server's names its URL)."""

from __future__ import annotations

import argparse
import os

from tunelab.client import Client
from tunelab.transport import DEFAULT_URL, TunelabError

# A command at a terminal rides over a server restart, but a wrong URL must not keep
# someone waiting long for the error.
RETRY_FOR_S = 5.0


def add_url_argument(
    parser: argparse.ArgumentParser, help: str | None = None, api_url_alias: bool = False
) -> None:
    """`--url`; `api_url_alias` also takes `--api-url`, the flag's earlier name here."""
    parser.add_argument(
        "--url",
        default=None,
        help=help or f"server URL (default: TUNELAB_URL or {DEFAULT_URL}; token: TUNELAB_TOKEN)",
    )
    if api_url_alias:
        parser.add_argument("--api-url", dest="url", default=None, help=argparse.SUPPRESS)


def server_url(url: str | None) -> str:
    return url or os.environ.get("TUNELAB_URL") or DEFAULT_URL


def connect(url: str | None, timeout_s: float = 30.0) -> Client:
    """A client of the server at `url` (default TUNELAB_URL), token from TUNELAB_TOKEN."""
    return Client(server_url(url), timeout=timeout_s, retry_for_s=RETRY_FOR_S)


def describe(error: TunelabError) -> str:
    """The one line a failed call is shown as."""
    return error.detail + (f" (field {error.field})" if error.field else "")
