"""A real server process and Debian's Chromium, driven by playwright (never downloaded)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.services import ROOT, live_server

CHROMIUM = os.environ.get("TUNELAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
DIST = ROOT / "frontend" / "dist" / "index.html"
SCREENSHOTS = ROOT / "docs" / "screenshots"


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (scripts/setup --dev installs it)")
    if not DIST.exists():
        pytest.skip("frontend/dist is missing (scripts/setup builds it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One `tunelab serve` on its own SQLite file for the browser tests."""
    data = tmp_path_factory.mktemp("browser-server")
    database = f"sqlite:///{data / 'tunelab.db'}"
    env = {"TUNELAB_BROKER_URL": "", "TUNELAB_REDIS_URL": ""}
    try:
        server = live_server(database, data, env=env)
        url = server.__enter__()
    except RuntimeError:  # a cold start on a loaded machine can miss the 30 s; once more
        server = live_server(database, data, env=env)
        url = server.__enter__()
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture
def api(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server}/api/v1", timeout=10) as client:
        yield client


@pytest.fixture
def page(browser: Any, server: str) -> Iterator[Any]:
    context = browser.new_context(base_url=server, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("dialog", lambda dialog: (errors.append(f"dialog: {dialog.message}"), dialog.dismiss()))
    page.errors = errors
    yield page
    context.close()
    assert not errors, errors


def screenshot(page: Any, name: str) -> None:
    """Small PNGs of each page for the README (only when TUNELAB_SCREENSHOTS is set)."""
    if os.environ.get("TUNELAB_SCREENSHOTS"):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.evaluate("() => window.scrollTo(0, 0)")
        page.screenshot(path=str(path), full_page=False)
