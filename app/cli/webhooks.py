"""`tunelab webhook add | list | rm | test | deliveries`: notifications from a terminal.

Like `tunelab study`, these talk to a running server through `tunelab.client` (--url,
TUNELAB_URL, TUNELAB_TOKEN); a refused call or an unreachable server is one line.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime
from typing import Any

from app.cli import remote

FORMATS = ["json", "slack"]
# How long `webhook test` waits for a ping that is still being sent.
TEST_WAIT_S = 15.0


def register(commands: Any) -> None:
    common = argparse.ArgumentParser(add_help=False)
    remote.add_url_argument(common)

    webhook = commands.add_parser("webhook", help="notify a URL when studies finish or fail")
    actions = webhook.add_subparsers(dest="webhook_command", metavar="ACTION", required=True)

    add = actions.add_parser("add", parents=[common], help="add a webhook (prints its secret)")
    add.add_argument("target", metavar="URL", help="where to POST the notifications")
    add.add_argument(
        "--study", type=int, default=None, help="one study (default: every study of the project)"
    )
    add.add_argument("--project", default=None, help="project name (default: the default one)")
    add.add_argument(
        "--events",
        type=_events,
        default=None,
        metavar="A,B",
        help="comma-separated: study.finished, study.new_best, study.target_reached, "
        "trial.failed, worker.lost (default: all of them)",
    )
    add.add_argument("--format", choices=FORMATS, default="json", help="json or slack")
    add.add_argument("--description", default="")
    add.add_argument("--secret", default=None, help="signing secret (default: a new random one)")
    add.set_defaults(handler=run_add)

    listing = actions.add_parser("list", parents=[common], help="list webhooks")
    listing.add_argument("--study", type=int, default=None, help="only those of this study")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(handler=run_list)

    remove = actions.add_parser("rm", parents=[common], help="delete a webhook")
    remove.add_argument("webhook_id", type=int)
    remove.set_defaults(handler=run_rm)

    test = actions.add_parser("test", parents=[common], help="send a ping and show how it went")
    test.add_argument("webhook_id", type=int)
    test.set_defaults(handler=run_test)

    deliveries = actions.add_parser(
        "deliveries", parents=[common], help="a webhook's delivery log, newest first"
    )
    deliveries.add_argument("webhook_id", type=int)
    deliveries.add_argument("--limit", type=int, default=20)
    deliveries.add_argument("--json", action="store_true", help="print JSON (with payloads)")
    deliveries.set_defaults(handler=run_deliveries)


def _events(text: str) -> list[str]:
    events = [e.strip() for e in text.split(",") if e.strip()]
    if not events:
        raise argparse.ArgumentTypeError("name at least one event")
    return events


def _scope(webhook: dict[str, Any]) -> str:
    if webhook.get("study_id") is not None:
        return f"study {webhook['study_id']}"
    return f"project {webhook.get('project')}"


def _last(webhook: dict[str, Any]) -> str:
    last = webhook.get("last_delivery")
    if not last:
        return "-"
    return last["state"] + (f" {last['status']}" if last.get("status") is not None else "")


def run_add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {
        "study_id": args.study,
        "project": args.project,
        "format": args.format,
        "description": args.description,
    }
    if args.events is not None:
        body["events"] = args.events
    if args.secret is not None:
        body["secret"] = args.secret
    with remote.connect(args.url) as client:
        made = client.create_webhook(args.target, **body)
    print(f"webhook {made['id']} created: {made['url']} ({_scope(made)}, {made['format']})")
    print(f"events: {', '.join(made['events'])}")
    print(f"secret: {made['secret']}")
    print("Keep the secret: it is shown only this once (receivers verify signatures with it).")
    return 0


def run_list(args: argparse.Namespace) -> int:
    with remote.connect(args.url) as client:
        found = client.webhooks(args.study)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no webhooks")
        return 0
    print(f"{'id':>5}  {'active':<6} {'format':<6} {'scope':<20} {'last':<13} url / events")
    for w in found:
        print(
            f"{w['id']:>5}  {'yes' if w['active'] else 'no':<6} {w['format']:<6} "
            f"{_scope(w):<20} {_last(w):<13} {w['url']}"
        )
        print(
            f"{'':>5}  {', '.join(w['events'])}"
            + (f"  # {w['description']}" if w["description"] else "")
        )
    return 0


def run_rm(args: argparse.Namespace) -> int:
    with remote.connect(args.url) as client:
        client.delete_webhook(args.webhook_id)
    print(f"webhook {args.webhook_id} deleted")
    return 0


def _describe(d: dict[str, Any]) -> str:
    parts = [d["state"]]
    if d.get("status") is not None:
        parts.append(f"HTTP {d['status']}")
    parts.append(f"{d['attempts']} attempt{'' if d['attempts'] == 1 else 's'}")
    if d.get("duration_ms") is not None:
        parts.append(f"{d['duration_ms']:.0f} ms")
    if d["state"] == "pending" and d.get("next_attempt_at"):
        parts.append(f"next attempt {_when(d['next_attempt_at'])}")
    if d.get("error"):
        parts.append(d["error"])
    return ", ".join(parts)


def _when(iso: str | None) -> str:
    """An API time in this machine's time zone, to the second."""
    if not iso:
        return "-"
    try:
        at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return at.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def run_test(args: argparse.Namespace) -> int:
    with remote.connect(args.url) as client:
        delivery = client.test_webhook(args.webhook_id)
        deadline = time.monotonic() + TEST_WAIT_S
        # Sent at once; a slow receiver may still be answering when the call returns.
        while delivery["state"] == "pending" and delivery["attempts"] == 0:
            if time.monotonic() > deadline:
                break
            time.sleep(0.3)
            delivery = next(
                (
                    d
                    for d in client.webhook_deliveries(args.webhook_id, limit=20)
                    if d["id"] == delivery["id"]
                ),
                delivery,
            )
    print(f"ping delivery {delivery['id']}: {_describe(delivery)}")
    return 0 if delivery["state"] == "delivered" else 1


def run_deliveries(args: argparse.Namespace) -> int:
    with remote.connect(args.url) as client:
        found = client.webhook_deliveries(args.webhook_id, limit=args.limit)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print(f"webhook {args.webhook_id} has sent nothing yet")
        return 0
    for d in found:
        print(f"{d['id']:>6}  {_when(d['created_at'])}  {d['event']:<21} {_describe(d)}")
    return 0
