"""What a webhook POSTs: the JSON body of the contract, or a Slack incoming-webhook
message. Pure: payloads in, bytes out."""

from __future__ import annotations

import json
import math
from typing import Any

from app.webhooks.schemas import (
    NEW_BEST,
    PING,
    STUDY_FINISHED,
    TARGET_REACHED,
    TRIAL_FAILED,
    WORKER_LOST,
)

# A Slack section's text is cut at 3,000 characters.
_SLACK_TEXT_MAX = 2900
_TITLES = {
    NEW_BEST: "New best value",
    TARGET_REACHED: "Target reached",
    STUDY_FINISHED: "Study finished",
    TRIAL_FAILED: "Trial failed",
    WORKER_LOST: "Worker lost",
    PING: "Test delivery",
}


def number(value: float | None) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.6g}"


def json_safe(value: Any) -> Any:
    """NaN and +/-inf (kept by the database) as strings: strict JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def links(payload: dict[str, Any], public_url: str) -> dict[str, str]:
    """The dashboard pages of the payload's study and trial, under `public_url`."""
    base = public_url.rstrip("/")
    if not base:
        return {}
    found: dict[str, str] = {}
    study, trial = payload.get("study"), payload.get("trial")
    if study and study.get("id") is not None:
        found["study"] = f"{base}/studies/{study['id']}"
    if trial and trial.get("id") is not None:
        found["trial"] = f"{base}/trials/{trial['id']}"
    return found


def render(payload: dict[str, Any], delivery_id: int, fmt: str, public_url: str = "") -> bytes:
    """The body of one delivery: the stored payload with the delivery's id and, when the
    server knows its public address, links to the dashboard's pages, in `fmt`."""
    body: dict[str, Any] = {"id": delivery_id, **payload}
    found = links(payload, public_url)
    if found:
        body["links"] = found
    if fmt == "slack":
        body = slack(body)
    return json.dumps(json_safe(body), separators=(",", ":"), allow_nan=False).encode()


def _escape(text: str) -> str:
    """Slack's mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _linked(text: str, url: str | None) -> str:
    """Slack's link markup, `<url|text>`; the text alone without a URL."""
    return f"<{url}|{text}>" if url else text


def slack(body: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message (also read by Mattermost, Rocket.Chat and others
    that speak Slack's format): `text` for notifications, `blocks` for the layout."""
    event = str(body.get("event", ""))
    text = str(body.get("text", ""))
    title = _TITLES.get(event, event)
    found: dict[str, str] = body.get("links") or {}
    fields: list[dict[str, Any]] = []
    study = body.get("study")
    if study:
        name = f"{_escape(str(study.get('name')))} (#{study.get('id')})"
        fields.append({"type": "mrkdwn", "text": f"*Study*\n{_linked(name, found.get('study'))}"})
    trial = body.get("trial")
    if trial:
        number_text = _linked(f"#{trial.get('number')}", found.get("trial"))
        fields.append(
            {
                "type": "mrkdwn",
                "text": f"*Trial*\n{number_text} ({trial.get('state')}, "
                f"value {number(trial.get('value'))})",
            }
        )
    blocks: list[dict[str, Any]] = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"*{title}*\n{_escape(text)}"[:_SLACK_TEXT_MAX]},
        }
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"Tunelab · {event} · delivery {body.get('id')}"}
            ],
        }
    )
    return {"text": text, "blocks": blocks}
