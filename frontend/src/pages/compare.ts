// Compare 2-4 trials of one study (/studies/{id}/compare?trials=3,7,12): their curves of
// one metric overlaid, a parameter and result diff, and their decisions on one timeline.
// One colour per trial (the order of the URL) on the chart, the table and the timeline.
import { ApiError, type EventRead, type TrialRead } from "../api/client";
import { subscribe, type LiveStream } from "../api/live";
import { draw, purge, throttle } from "../charts";
import { clear, duration, fmt, h, link, stateBadge } from "../dom";
import { navigate } from "../main";
import type { MultiTrial } from "./study/objectives";
import { baseLayout, compareApi, PALETTE, parseIds, swatch, type TrialCompare } from "./compare-common";

type Compared = TrialCompare["trials"][number];
const EARLY_END = ["stopped", "paused", "failed", "cancelled"];

function shown(value: unknown): string {
  if (value === undefined || value === null) return "—";
  if (typeof value === "number") return fmt(value, 6);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

export function comparePage(root: HTMLElement, params: URLSearchParams, studyId: number): () => void {
  const title = h("h1", null, "Compare trials");
  const back = h("div", { class: "row" }, link(`/studies/${studyId}`, "← study ", String(studyId)));
  const message = h("p", { class: "error", role: "alert", id: "compare-error" });
  const legend = h("div", { class: "row wrap compare-legend", id: "compare-legend" });
  const metricSel = h("select", { id: "compare-metric", "aria-label": "metric" });
  const chart = h("div", { class: "chart", id: "compare-curves" });
  const chartNote = h("p", { class: "muted", id: "compare-curves-note" });
  const onlyDiff = h("input", { type: "checkbox", id: "compare-only-diff", checked: true });
  const diffNote = h("span", { class: "muted" });
  const table = h("table", { class: "table compare-diff", id: "compare-params" });
  const events = h("table", { class: "table", id: "compare-events" });
  const body = h(
    "div",
    { hidden: true },
    h("section", { class: "card" }, h("div", { class: "row between" }, h("h2", null, "Curves"), h("label", { class: "row" }, "Metric ", metricSel)), chart, chartNote),
    h(
      "section",
      { class: "card" },
      h("div", { class: "row between" }, h("h2", null, "Parameters and results"), h("label", { class: "row" }, onlyDiff, " hide identical rows ", diffNote)),
      table,
    ),
    h("section", { class: "card" }, h("h2", null, "Decisions and state changes"), events),
  );
  root.append(h("section", { class: "card" }, h("div", { class: "row between" }, title, back), legend, message), body);

  const { ids, problem } = parseIds(params.getAll("trials"), 2, 4, "trials");
  let data: TrialCompare | null = null;
  // While a compared trial runs, its new points, decisions and state come in live.
  let stream: LiveStream | null = null;
  const refresh = throttle(() => load(metricSel.value || undefined), 2000);
  const follow = () => {
    const active = data?.trials.some((t) => ["running", "queued", "paused"].includes(t.trial.state));
    if (!active || stream) return;
    stream = subscribe(`/studies/${studyId}/events`, (change) => {
      const trialId = Number(change.data["trial_id"] ?? change.data["id"]);
      if (change.kind === "resync" || (["metrics", "trial", "event"].includes(change.kind) && ids.includes(trialId))) refresh();
    }, (reconnected) => { if (reconnected) refresh(); });
  };
  const colorOf = (trialId: number) => PALETTE[Math.max(0, ids.indexOf(trialId)) % PALETTE.length]!;
  const label = (t: TrialRead) => `#${t.number}`;

  function fail(err: unknown): void {
    const detail = err instanceof ApiError ? err.detail : String(err);
    clear(message, `Cannot compare these trials: ${detail}. `, link(`/studies/${studyId}`, "Back to the study"), " to pick 2 to 4 of its trials.");
  }

  async function load(metric?: string): Promise<void> {
    try {
      data = await compareApi.trials(studyId, ids, metric);
    } catch (err) {
      fail(err);
      return;
    }
    message.textContent = "";
    body.hidden = false;
    clear(back, link(`/studies/${studyId}`, "← ", data.study_name));
    title.textContent = `Compare ${data.trials.length} trials`;
    clear(legend, data.trials.map((t) => h("span", { class: "row compare-chip", "data-trial": t.trial.id }, swatch(colorOf(t.trial.id)), link(`/trials/${t.trial.id}`, label(t.trial)), stateBadge(t.trial.state))));
    clear(metricSel, data.metrics.map((m) => h("option", { value: m, selected: m === data!.metric }, m)));
    if (!data.metrics.includes(data.metric)) metricSel.prepend(h("option", { value: data.metric, selected: true }, data.metric));
    await drawCurves(data);
    renderDiff(data);
    renderEvents(data);
    follow();
  }

  async function drawCurves(d: TrialCompare): Promise<void> {
    const withPoints = d.trials.filter((t) => t.curve.steps.length);
    const traces = withPoints.map((t) => {
      // Where a trial ended early (stopped, paused, failed, cancelled): an x on its last point.
      const last = t.curve.steps.length - 1;
      const early = EARLY_END.includes(t.trial.state);
      const dots = t.curve.steps.length <= 60 ? 5 : 0;
      return {
        type: "scatter",
        mode: "lines+markers",
        name: label(t.trial),
        x: t.curve.steps,
        y: t.curve.values,
        line: { color: colorOf(t.trial.id), width: 2 },
        marker: {
          color: colorOf(t.trial.id),
          size: t.curve.steps.map((_, i) => (i === last && early ? 11 : dots)),
          symbol: t.curve.steps.map((_, i) => (i === last && early ? "x" : "circle")),
        },
        customdata: t.curve.steps.map(() => t.trial.id),
        meta: { trial: t.trial.id },
        hovertemplate: `${label(t.trial)} (${t.trial.state})<br>step %{x}<br>${d.metric} %{y}<extra></extra>`,
      };
    });
    const layout = baseLayout(`${d.metric} by step`, d.x_label, d.metric);
    layout["shapes"] = d.rung_levels.map((x) => ({ type: "line", x0: x, x1: x, yref: "paper", y0: 0, y1: 1, line: { dash: "dot", color: "#9ca3af", width: 1 } }));
    if (!withPoints.length) {
      layout["annotations"] = [{ text: `No points of ${d.metric} in these trials`, showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5 }];
    }
    await draw(chart, { data: traces, layout }, (trialId) => navigate(`/trials/${trialId}`));
    const none = d.trials.filter((t) => !t.curve.steps.length).map((t) => label(t.trial));
    const thinned = d.trials.filter((t) => t.curve.total > t.curve.steps.length).map((t) => `${label(t.trial)} (${t.curve.steps.length} of ${t.curve.total} points)`);
    chartNote.textContent = [
      none.length && withPoints.length ? `No points of ${d.metric}: ${none.join(", ")}.` : "",
      thinned.length ? `Thinned: ${thinned.join(", ")}, the last point kept.` : "",
      d.trials.some((t) => EARLY_END.includes(t.trial.state) && t.curve.steps.length) ? "×: where a trial ended early." : "",
      d.rung_levels.length ? "Dotted lines: the rungs." : "",
    ].filter(Boolean).join(" ");
  }

  function renderDiff(d: TrialCompare): void {
    const trials = d.trials.map((t) => t.trial);
    const multi = d.objectives.length > 1;
    type Row = { name: string; cells: unknown[]; group: "result" | "param"; best?: number | null };
    const rows: Row[] = [{ name: "state", cells: trials.map((t) => t.state), group: "result" }];
    // Values: one row per objective; the best trial's cell is marked in each.
    d.objectives.forEach((o, i) => {
      const cells = trials.map((t) => (multi ? (t as MultiTrial).values?.[i] ?? null : (t.value as number | null)));
      const finite = cells.map((c) => (typeof c === "number" && Number.isFinite(c) ? c : null));
      const candidates = finite.filter((c): c is number => c !== null);
      const best = candidates.length ? (o.direction === "maximize" ? Math.max(...candidates) : Math.min(...candidates)) : null;
      rows.push({ name: `${multi ? o.metric : "value"} ${o.direction === "maximize" ? "↑" : "↓"}`, cells, group: "result", best });
    });
    rows.push(
      { name: "budget", cells: trials.map((t) => t.budget), group: "result" },
      { name: "rung", cells: trials.map((t) => t.rung), group: "result" },
      { name: "last step", cells: trials.map((t) => t.last_step), group: "result" },
      { name: "duration", cells: trials.map((t) => duration(t.duration_s)), group: "result" },
      { name: "worker", cells: trials.map((t) => t.worker ?? "—"), group: "result" },
    );
    const names = [...new Set(trials.flatMap((t) => Object.keys(t.params)))].sort();
    for (const name of names) rows.push({ name, cells: trials.map((t) => (name in t.params ? t.params[name] : undefined)), group: "param" });

    const differs = (r: Row) => new Set(r.cells.map((c) => JSON.stringify(c ?? null))).size > 1;
    const head = h("thead", null, h("tr", null, h("th", null, ""), ...trials.map((t) => h("th", { "data-trial": t.id }, swatch(colorOf(t.id)), " ", link(`/trials/${t.id}`, label(t))))));
    const group = (text: string) => h("tr", { class: "compare-group" }, h("th", { colspan: trials.length + 1 }, text));
    const line = (r: Row) => {
      const diff = differs(r);
      return h(
        "tr",
        { class: diff ? "diff" : "same", "data-row": r.name, "data-group": r.group, "data-differs": diff ? "1" : "0" },
        h("th", null, r.name),
        ...r.cells.map((c) => {
          const best = r.best !== undefined && r.best !== null && c === r.best;
          return h("td", { class: best ? "num best" : "num", title: best ? "best of these" : null }, r.name === "state" ? stateBadge(String(c)) : shown(c));
        }),
      );
    };
    const results = rows.filter((r) => r.group === "result");
    const paramRows = rows.filter((r) => r.group === "param");
    clear(table, head, h("tbody", null, group("Results"), results.map(line), group(`Parameters (${paramRows.filter(differs).length} of ${paramRows.length} differ)`), paramRows.map(line)));
    const same = rows.filter((r) => !differs(r)).length;
    diffNote.textContent = `(${same})`;
    applyFilter();
  }

  function applyFilter(): void {
    table.classList.toggle("only-diff", onlyDiff.checked);
  }

  /** The event's data beyond the action and rung (shown in their own columns). */
  function more(data: Record<string, unknown>): HTMLSpanElement | null {
    const rest = Object.fromEntries(Object.entries(data).filter(([k]) => k !== "rung" && k !== "action"));
    return Object.keys(rest).length ? h("span", { class: "muted" }, ` ${JSON.stringify(rest)}`) : null;
  }

  function renderEvents(d: TrialCompare): void {
    const all: [EventRead, TrialRead][] = d.trials.flatMap((t: Compared) => t.events.map((e) => [e, t.trial] as [EventRead, TrialRead]));
    all.sort((a, b) => Date.parse(a[0].at) - Date.parse(b[0].at) || a[0].id - b[0].id);
    const start = all.length ? Date.parse(all[0]![0].at) : 0;
    const rows = all.map(([e, t]) => {
      const change = e.from_state || e.to_state ? `${e.from_state ?? "—"} → ${e.to_state ?? "—"}` : "";
      const rung = e.data["rung"];
      return h(
        "tr",
        { "data-trial": t.id, "data-kind": e.kind, class: e.kind === "decision" ? "decision" : null },
        h("td", { class: "muted", title: new Date(e.at).toLocaleString() }, `+${duration((Date.parse(e.at) - start) / 1000)}`),
        h("td", null, h("span", { class: "row" }, swatch(colorOf(t.id)), label(t))),
        h("td", null, e.kind),
        h("td", null, change),
        h("td", { class: "num" }, rung === undefined || rung === null ? "" : String(rung)),
        h("td", null, e.actor),
        h("td", null, e.reason || "", more(e.data)),
      );
    });
    clear(
      events,
      h("thead", null, h("tr", null, ...["When", "Trial", "Kind", "Change", "Rung", "By", "Reason"].map((c) => h("th", null, c)))),
      h("tbody", null, rows.length ? rows : h("tr", null, h("td", { colspan: 7, class: "muted" }, "No events."))),
    );
  }

  onlyDiff.addEventListener("change", applyFilter);
  metricSel.addEventListener("change", () => {
    const q = new URLSearchParams(location.search);
    q.set("metric", metricSel.value);
    history.replaceState(null, "", `${location.pathname}?${q}`);
    void load(metricSel.value);
  });

  if (problem) {
    clear(message, problem, " ", link(`/studies/${studyId}`, "Back to the study"), " to pick them in its trials table.");
  } else {
    void load(params.get("metric") ?? undefined);
  }
  return () => {
    stream?.close();
    purge(chart);
  };
}
