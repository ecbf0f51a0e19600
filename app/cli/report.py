"""`tunelab report STUDY -o report.html`: the dashboard's figures in one self-contained file.

The figures come from the same builders as `GET /studies/{id}/plots/{kind}`: over HTTP
from a server (`--url`, TUNELAB_URL, TUNELAB_TOKEN), or straight from a database with
`--database-url`. Plotly.js is inlined, so the file opens offline.
"""

from __future__ import annotations

import argparse
import html
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.cli import remote
from app.plots.service import KINDS

TOP_TRIALS = 20


def register(commands: Any) -> None:
    report = commands.add_parser("report", help="write a study's charts into one HTML file")
    report.add_argument("study", type=int, help="study id")
    report.add_argument("-o", "--output", type=Path, default=None, help="default: study-ID.html")
    remote.add_url_argument(report)
    report.add_argument(
        "--database-url", default=None, help="read the database directly instead of a server"
    )
    report.set_defaults(handler=run_report)


def _from_server(url: str | None, study_id: int) -> dict[str, Any]:
    # Figures of a large study take the server a while to build.
    with remote.connect(url, timeout_s=120) as client:

        def get(path: str, **params: Any) -> Any:
            return client.request("GET", path, params=params)

        study = get(f"/studies/{study_id}")
        return {
            "study": study,
            "summary": get(f"/studies/{study_id}/summary"),
            "figures": {kind: get(f"/studies/{study_id}/plots/{kind}") for kind in KINDS},
            "best": get(
                f"/studies/{study_id}/trials",
                order_by=_best_order(study),
                state="completed",
                limit=TOP_TRIALS,
            )["items"],
        }


def _best_order(study: dict[str, Any]) -> str:
    return "value" if study["objective"]["direction"] == "minimize" else "-value"


def _from_database(database_url: str, study_id: int) -> dict[str, Any]:
    from app.db.session import Database
    from app.plots import service
    from app.plots.serialize import figure_json
    from app.studies import service as studies
    from app.trials.repository import TrialRepository
    from app.trials.schemas import TrialRead

    database = Database(database_url)
    try:
        with database.sessions() as session:
            study = studies.get_study(session, study_id)
            read = studies.read_study(session, study).model_dump(mode="json")
            trials, _ = TrialRepository(session).page(
                study_id, ["completed"], _best_order(read), TOP_TRIALS, None
            )
            return {
                "study": read,
                "summary": service.summary(session, study),
                "figures": {
                    k: json.loads(figure_json(service.figure(session, study, k))) for k in KINDS
                },
                "best": [TrialRead.model_validate(t).model_dump(mode="json") for t in trials],
            }
    finally:
        database.dispose()


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return "" if value is None else str(value)


def render(data: dict[str, Any]) -> str:
    """The report's HTML; every user string is escaped."""
    from plotly.offline import get_plotlyjs

    esc = html.escape
    study, summary = data["study"], data["summary"]
    counts = ", ".join(f"{v} {k}" for k, v in summary["trial_counts"].items()) or "none"
    figures = "\n".join(
        f'<div class="chart" id="chart-{kind}"></div>'
        f'<script type="application/json" id="fig-{kind}">{_script_json(fig)}</script>'
        for kind, fig in data["figures"].items()
    )
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{esc(_cell(t[c]))}</td>" for c in ("number", "value", "params", "state"))
        + "</tr>"
        for t in data["best"]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(study["name"])} - Tunelab report</title>
<style>body{{font:14px system-ui,sans-serif;margin:24px;color:#111827}}
.chart{{min-height:360px;border:1px solid #e5e7eb;border-radius:8px;margin:12px 0}}
table{{border-collapse:collapse}}td,th{{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left}}</style>
<script>{get_plotlyjs()}</script></head><body>
<h1>{esc(study["name"])}</h1>
<p>Study {study["id"]} &middot; {esc(study["state"])} &middot; {esc(study["objective"]["direction"])}
{esc(study["objective"]["metric"])} &middot; strategy {esc(str(study["strategy"].get("name")))}</p>
<table><tr><th>best value</th><td>{esc(_cell(summary["best_value"]))}</td></tr>
<tr><th>trials</th><td>{summary["n_trials"]} ({esc(counts)})</td></tr>
<tr><th>compute used</th><td>{summary["compute_used_s"]:.1f} s</td></tr>
<tr><th>saved by early stopping</th><td>{summary["compute_saved_s"]:.1f} s</td></tr></table>
{figures}
<h2>Best trials</h2><table><tr><th>#</th><th>value</th><th>params</th><th>state</th></tr>{rows}</table>
<p style="color:#6b7280">Written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by tunelab report.</p>
<script>
for (const el of document.querySelectorAll('.chart')) {{
  const fig = JSON.parse(document.getElementById('fig-' + el.id.slice(6)).textContent);
  Plotly.newPlot(el, fig.data, fig.layout, {{responsive: true, displaylogo: false}});
}}
</script></body></html>
"""


def _script_json(value: Any) -> str:
    # Inside <script>, "</" could end the element: escape it (and & for good measure).
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def run_report(args: argparse.Namespace) -> int:
    if args.database_url:
        data = _from_database(args.database_url, args.study)
    else:
        data = _from_server(args.url, args.study)
    output: Path = args.output or Path(f"study-{args.study}.html")
    output.write_text(render(data), encoding="utf-8")
    print(f"wrote {output} ({output.stat().st_size // 1024} KiB)")
    return 0
