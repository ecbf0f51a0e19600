"""Notes and tags in the dashboard, in real Chromium against a real server: a study note
and a trial note edited with a live preview, tags added and removed, all kept across a
reload; a note that tries to run script renders as inert text and links."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.browser.conftest import screenshot
from tests.fixtures.studies import study_body

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.xdist_group("browser")]

HOSTILE = (
    "# Run log\n\n"
    "LR **too high**, see `loss` and [the docs](https://example.com/docs).\n\n"
    "- [x] baseline\n- second *item*\n\n"
    "<script>window.__pwned=1</script>\n\n"
    '<img src=x onerror="window.__pwned=1">\n\n'
    "[x](javascript:window.__pwned=1), [y](JaVaScRiPt:window.__pwned=1) and "
    "[z](<java\x0bscript:window.__pwned=1>)\n\n"
    "```\n<b>not bold</b>\n```\n"
)

# What the rendered note holds that could run script: none of it may be there.
ACTIVE_CONTENT = """sel => {
  const root = document.querySelector(sel);
  const all = [...root.querySelectorAll('*')];
  return {
    scripts: root.querySelectorAll('script, img, iframe, object, embed, svg').length,
    handlers: all.filter(el => [...el.attributes].some(a => a.name.startsWith('on'))).length,
    hrefs: [...root.querySelectorAll('a')].map(a => a.getAttribute('href')),
  };
}"""


def _pwned(page: Any) -> Any:
    return page.evaluate("() => window.__pwned")


def _check_inert(page: Any, selector: str) -> None:
    found = page.evaluate(ACTIVE_CONTENT, selector)
    assert found["scripts"] == 0 and found["handlers"] == 0, found
    assert found["hrefs"] == ["https://example.com/docs"], found
    note = page.locator(selector)
    # Raw HTML is shown as the text it is.
    assert "<script>window.__pwned=1</script>" in note.inner_text()
    assert '<img src=x onerror="window.__pwned=1">' in note.inner_text()
    assert note.locator("h3").inner_text() == "Run log"
    assert note.locator("strong").first.inner_text() == "too high"
    assert note.locator("pre code").inner_text() == "<b>not bold</b>"
    assert note.locator("li.md-task input[type=checkbox]").is_checked()
    # The javascript: links are text, not links; clicking them does nothing.
    refused = note.locator(".md-unsafe-link")
    assert refused.count() == 3 and refused.first.inner_text() == "x"
    for n in range(3):
        refused.nth(n).click()
    assert _pwned(page) is None


def test_notes_and_tags_are_edited_kept_and_rendered_inert(
    page: Any, api: httpx.Client, server: str
) -> None:
    study = api.post("/studies", json=study_body(name="notes study")).json()
    trials = [api.post(f"/studies/{study['id']}/trials").json() for _ in range(2)]
    api.post(f"/trials/{trials[0]['id']}/complete", json={"value": 0.5})

    # The study's note: Edit, a live preview, Save; the hostile parts stay text.
    page.goto(f"/studies/{study['id']}")
    panel = page.locator("#study-notes")
    panel.locator("text=No notes yet").wait_for()
    panel.locator("[data-notes-edit]").click()
    panel.locator("textarea").fill(HOSTILE)
    panel.locator("[data-notes-preview] h3").wait_for()
    _check_inert(page, "#study-notes [data-notes-preview]")
    panel.locator("[data-notes-save]").click()
    panel.locator("[data-notes-view] h3").wait_for()
    assert panel.locator("textarea").count() == 0
    assert "by anonymous" in panel.locator(".notes-meta").inner_text()
    assert api.get(f"/studies/{study['id']}").json()["notes"] == HOSTILE
    page.reload()
    page.locator("#study-notes [data-notes-view] h3").wait_for()
    _check_inert(page, "#study-notes [data-notes-view]")
    # Cancel keeps the stored note.
    panel.locator("[data-notes-edit]").click()
    panel.locator("textarea").fill("thrown away")
    panel.locator("[data-notes-cancel]").click()
    assert panel.locator("[data-notes-view] h3").inner_text() == "Run log"
    screenshot(page, "study-notes")

    # The trial: tags added (two at once, one refused with its field named), one removed.
    tid = trials[0]["id"]
    page.goto(f"/trials/{tid}")
    page.locator("#trial-tags").wait_for()
    page.fill("#tag-input", "baseline, lr-sweep")
    page.press("#tag-input", "Enter")
    page.locator('#trial-tags [data-tag="lr-sweep"]').wait_for()
    page.fill("#tag-input", "x" * 65)
    page.click("#tag-add")
    page.locator(".tags-row .error", has_text="add_tags.0").wait_for()
    page.fill("#tag-input", "")
    page.click('#trial-tags [aria-label="remove tag baseline"]')
    page.locator('#trial-tags [data-tag="baseline"]').wait_for(state="detached")
    notes = page.locator("#trial-notes")
    notes.locator("[data-notes-edit]").click()
    notes.locator("textarea").fill("Diverged at **step 3**; see [trial 2](/trials/2).")
    notes.locator("[data-notes-preview] strong").wait_for()
    notes.locator("textarea").press("Control+Enter")
    notes.locator("[data-notes-view] strong").wait_for()

    page.reload()
    page.locator('#trial-tags [data-tag="lr-sweep"]').wait_for()
    assert page.locator("#trial-tags [data-tag]").count() == 1
    assert page.locator("#trial-notes [data-notes-view] strong").inner_text() == "step 3"
    assert page.locator("#trial-notes [data-notes-view] a").get_attribute("href") == "/trials/2"
    read = api.get(f"/trials/{tid}").json()
    assert read["tags"] == ["lr-sweep"] and read["notes"].startswith("Diverged")

    # The study's trials table: a tags column (✎ for a note) and a tag filter.
    page.goto(f"/studies/{study['id']}")
    row = page.locator(f'#trials tr[data-trial="{tid}"]')
    row.locator('[data-tag="lr-sweep"]').wait_for()
    assert row.locator(".has-notes").get_attribute("title").startswith("Diverged")
    assert page.locator("#trials tr[data-trial]").count() == 2
    page.fill("#tag-filter", "lr-sweep")
    page.press("#tag-filter", "Enter")
    page.wait_for_function("() => document.querySelectorAll('#trials tr[data-trial]').length === 1")
    assert _pwned(page) is None

    # The client's dataframe carries both.
    pytest.importorskip("pandas")
    from tunelab.client import Client

    with Client(server) as client:
        frame = client.study(study["id"]).dataframe()
    assert list(frame["tags"]) == [["lr-sweep"], []]
    assert frame["notes"][0].startswith("Diverged") and frame["notes"][1] == ""
