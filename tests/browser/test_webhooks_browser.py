"""The notifications page in Chromium: create a webhook, send a test to a real receiver,
watch the delivery log; what users typed shows as text."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot
from tests.fixtures.studies import study_body
from tests.webhooks.receiver import Receiver
from tunelab.webhooks import verify

XSS = '<img src=x onerror="window.__xss = 1">'

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]


def test_webhook_created_tested_and_logged(page: Any, api: httpx.Client) -> None:
    study = api.post("/studies", json=study_body(name="notified")).json()

    with Receiver(status=200) as hook:
        hook_url = hook.url
        # From the study's header to its notifications.
        page.goto(f"/studies/{study['id']}")
        page.click("#notifications-link")
        page.wait_for_url(f"**/webhooks?study={study['id']}")
        form = page.locator("#webhook-create")
        assert form.locator('input[name="study"]').input_value() == str(study["id"])

        form.locator('input[name="url"]').fill(hook_url)
        form.locator('input[name="description"]').fill(XSS)
        form.locator('input[value="trial.failed"]').uncheck()
        form.locator('button[type="submit"]').click()
        secret = page.locator("#webhook-secret").inner_text()
        assert len(secret) >= 8

        (made,) = api.get("/webhooks", params={"study_id": study["id"]}).json()["items"]
        assert made["url"] == hook_url and made["description"] == XSS
        assert "trial.failed" not in made["events"] and "study.finished" in made["events"]
        assert made["secret_hint"] == secret[-4:]
        row = page.locator(f'#webhooks tr[data-webhook="{made["id"]}"]')
        row.wait_for()
        # The description is text: no <img> made, no handler run.
        assert row.locator(".webhook-description").inner_text() == XSS
        assert page.locator("#webhooks img").count() == 0
        assert page.evaluate("() => window.__xss") is None

        row.locator(".webhook-test").click()
        delivered = page.locator('#delivery-log tr[data-state="delivered"]')
        delivered.wait_for(timeout=15_000)
        assert delivered.locator(".delivery-status").inner_text() == "200"
        assert "ping" in delivered.inner_text()
        row.locator(".webhook-last").filter(has_text="delivered").wait_for()

        # The receiver got one signed POST; the row opens to the payload, as text.
        (request,) = hook.heard
        assert request.event == "ping"
        assert verify(request.body, request.headers["Tunelab-Signature"], secret)
        delivered.click()
        payload = page.locator("#delivery-log .delivery-payload pre.payload")
        payload.wait_for()
        assert json.loads(payload.inner_text())["event"] == "ping"
        screenshot(page, "webhooks")

        # Rotating the secret takes a second click; later pings are signed with the new one.
        rotate = row.locator(".webhook-rotate")
        rotate.click()
        assert api.get(f"/webhooks/{made['id']}").json()["secret_hint"] == secret[-4:]
        rotate.click()
        page.locator("#webhook-secret", has_not_text=secret).wait_for()
        renewed = page.locator("#webhook-secret").inner_text()
        assert api.get(f"/webhooks/{made['id']}").json()["secret_hint"] == renewed[-4:]
        row.locator(".webhook-test").click()
        second = hook.wait_for(2, "ping", timeout=15)[1]
        assert verify(second.body, second.headers["Tunelab-Signature"], renewed)
        assert not verify(second.body, second.headers["Tunelab-Signature"], secret)

    # Leaving the page stops its refreshes.
    page.click('.topbar a[href="/projects"]')
    page.locator("#projects").wait_for()
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/api/v1/webhooks" in r.url else None)
    page.wait_for_timeout(3200)
    assert calls == []
