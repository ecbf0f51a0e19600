"""The projects page and the studies list's project filter, in Chromium."""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from tests.browser.conftest import screenshot
from tests.fixtures.studies import study_body


def test_projects_page_creates_and_filters(page: Any, api: httpx.Client) -> None:
    name = f"vision-{secrets.token_hex(3)}"
    assert api.post("/projects", json={"name": name}).status_code == 201
    mine = api.post("/studies", json=study_body(name=f"{name} study", project=name)).json()
    other = api.post("/studies", json=study_body(name="elsewhere")).json()

    page.goto("/projects")
    row = page.locator(f'#projects tr[data-project="{name}"]')
    row.wait_for()
    assert row.locator("td").nth(1).inner_text() == "admin"
    assert row.locator("td").nth(2).inner_text() == "1"
    screenshot(page, "projects")

    created = f"audio-{secrets.token_hex(3)}"
    page.fill('#project-create input[name="name"]', created)
    page.click('#project-create button[type="submit"]')
    page.locator(f'#projects tr[data-project="{created}"]').wait_for()
    assert any(p["name"] == created for p in api.get("/projects").json()["items"])

    # The project's link opens the studies list filtered to it.
    row.locator("a").click()
    page.locator(f'#studies tr[data-study="{mine["id"]}"]').wait_for()
    assert page.locator(f'#studies tr[data-study="{other["id"]}"]').count() == 0
    page.wait_for_function(
        "name => document.querySelector('#project-filter').value === name", arg=name
    )
    page.select_option("#project-filter", "")
    page.locator(f'#studies tr[data-study="{other["id"]}"]').wait_for()
