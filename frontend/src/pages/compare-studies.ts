// Compare 2-6 studies (/compare?studies=1,4): their optimization histories (each finished
// trial's value by trial number or by time) and best-so-far lines overlaid, each study in
// its own direction, and a summary table. One colour per study, in the order of the URL.
import { ApiError, api, type StudyRead } from "../api/client";
import { draw, purge } from "../charts";
import { clear, fmt, h, link, stateBadge } from "../dom";
import { navigate } from "../main";
import { baseLayout, compareApi, PALETTE, parseIds, swatch, type BestSteps, type StudyHistory } from "./compare-common";
import { strategyLabel } from "./studies";

interface Loaded {
  id: number;
  color: string;
  study: StudyRead;
  history: StudyHistory;
}

/** Seconds in the unit that suits the longest of them. */
function timeUnit(maxSeconds: number): [string, number] {
  if (maxSeconds > 2 * 86400) return ["days", 86400];
  if (maxSeconds > 2 * 3600) return ["hours", 3600];
  if (maxSeconds > 120) return ["minutes", 60];
  return ["seconds", 1];
}

export function compareStudiesPage(root: HTMLElement, params: URLSearchParams): () => void {
  const message = h("div", { class: "error", role: "alert", id: "compare-error" });
  const warnings = h("ul", { class: "compare-warnings", id: "compare-warnings" });
  const xSel = h(
    "select",
    { id: "compare-x", "aria-label": "x axis" },
    h("option", { value: "number" }, "trial number"),
    h("option", { value: "time" }, "time since the study's first start"),
  );
  const showTrials = h("input", { type: "checkbox", id: "compare-show-trials", checked: true });
  const chart = h("div", { class: "chart", id: "compare-history" });
  const note = h("p", { class: "muted", id: "compare-history-note" });
  const summary = h("table", { class: "table", id: "compare-summary" });
  const body = h(
    "div",
    { hidden: true },
    h(
      "section",
      { class: "card" },
      h("div", { class: "row between" }, h("h2", null, "Optimization history"), h("div", { class: "row" }, "x ", xSel, h("label", { class: "row" }, showTrials, " trials"))),
      warnings,
      chart,
      note,
    ),
    h("section", { class: "card" }, h("h2", null, "Studies"), summary),
  );
  root.append(h("section", { class: "card" }, h("div", { class: "row between" }, h("h1", null, "Compare studies"), link("/", "← studies")), message), body);

  const { ids, problem } = parseIds(params.getAll("studies"), 2, 6, "studies");
  if (params.get("x") === "time") xSel.value = "time";
  let loaded: Loaded[] = [];

  async function load(): Promise<void> {
    const results = await Promise.allSettled(
      ids.map(async (id, i) => {
        const [study, history] = await Promise.all([api.getStudy(id), compareApi.history(id)]);
        return { id, color: PALETTE[i % PALETTE.length]!, study, history } as Loaded;
      }),
    );
    loaded = [];
    const failed: string[] = [];
    results.forEach((r, i) => {
      if (r.status === "fulfilled") loaded.push(r.value);
      else failed.push(`study ${ids[i]}: ${r.reason instanceof ApiError ? r.reason.detail : String(r.reason)}`);
    });
    clear(
      message,
      failed.length ? h("p", null, `Not shown: ${failed.join("; ")}.`, loaded.length < 2 ? " Pick 2 to 6 studies in the " : "", loaded.length < 2 ? link("/", "studies list") : "", loaded.length < 2 ? "." : "") : null,
    );
    if (!loaded.length) return;
    body.hidden = false;
    renderWarnings();
    renderSummary();
    await drawHistory();
  }

  function renderWarnings(): void {
    const items: string[] = [];
    const directions = new Set(loaded.map((l) => l.history.direction));
    if (directions.size > 1) {
      const which = loaded.map((l) => `${l.study.name} ${l.history.direction === "maximize" ? "maximizes" : "minimizes"}`).join(", ");
      items.push(`The directions differ (${which}): each best-so-far line follows its own study's direction, so they move opposite ways.`);
    }
    const metrics = new Set(loaded.map((l) => l.history.metric));
    if (metrics.size > 1) {
      items.push(
        metrics.size === 2
          ? `The objective metrics differ (${[...metrics].join(", ")}): each has a y axis of its own (${[...metrics][1]} on the right).`
          : `The objective metrics differ (${[...metrics].join(", ")}): the values share one axis but measure different things.`,
      );
    }
    for (const l of loaded.filter((x) => x.history.objectives.length > 1)) {
      items.push(`${l.study.name} has ${l.history.objectives.length} objectives: shown on its first, ${l.history.metric}.`);
    }
    clear(warnings, items.map((t) => h("li", null, t)));
  }

  function xsOf(numbers: number[], seconds: (number | null)[], scale: number): (number | null)[] {
    return xSel.value === "time" ? seconds.map((s) => (s === null ? null : s / scale)) : numbers;
  }

  async function drawHistory(): Promise<void> {
    const byTime = xSel.value === "time";
    const longest = Math.max(1, ...loaded.flatMap((l) => l.history.points.seconds.concat(l.history.best_by_time.seconds).map((s) => s ?? 0)));
    const [unit, scale] = timeUnit(longest);
    const traces: Record<string, unknown>[] = [];
    // Two objective metrics: the second gets a y axis of its own, on the right.
    const metrics = [...new Set(loaded.map((l) => l.history.metric))];
    const axisOf = (l: Loaded) => (metrics.length === 2 && l.history.metric === metrics[1] ? "y2" : "y");
    for (const l of loaded) {
      const p = l.history.points;
      const best: BestSteps = byTime ? l.history.best_by_time : l.history.best_by_number;
      const arrow = l.history.direction === "maximize" ? "↑" : "↓";
      traces.push({
        type: p.value.length > 3000 ? "scattergl" : "scatter",
        mode: "markers",
        name: `${l.study.name} trials`,
        legendgroup: String(l.id),
        yaxis: axisOf(l),
        x: xsOf(p.number, p.seconds, scale),
        y: p.value,
        customdata: p.trial_id,
        visible: showTrials.checked ? true : "legendonly",
        marker: { color: l.color, size: 6, opacity: 0.55 },
        meta: { study: l.id, role: "trials" },
        hovertemplate: `${l.study.name} #%{text}<br>${l.history.metric} %{y}<extra></extra>`,
        text: p.number,
      });
      traces.push({
        type: "scatter",
        mode: "lines",
        name: `${l.study.name} best so far ${arrow}`,
        legendgroup: String(l.id),
        yaxis: axisOf(l),
        x: xsOf(best.number, best.seconds, scale),
        y: best.value,
        line: { color: l.color, width: 2.5, shape: "hv" },
        meta: { study: l.id, role: "best" },
        hovertemplate: `${l.study.name} best so far %{y}<extra></extra>`,
      });
    }
    const x = byTime ? `${unit} since the study's first start` : "trial number";
    const layout = baseLayout("Optimization history and best so far", x, metrics.length === 2 ? metrics[0]! : metrics.join(" / "));
    if (metrics.length === 2) {
      layout["yaxis2"] = { title: { text: metrics[1] }, overlaying: "y", side: "right", showgrid: false, zeroline: false };
      layout["margin"] = { l: 60, r: 60, t: 45, b: 50 };
    }
    await draw(chart, { data: traces, layout }, (trialId) => {
      navigate(`/trials/${trialId}`);
    });
    const thinned = loaded.filter((l) => l.history.thinned).map((l) => `${l.study.name}: ${l.history.points.value.length} of ${l.history.n_scored} trials (the best half and a sample)`);
    note.textContent = thinned.length ? `Markers thinned: ${thinned.join("; ")}. The best-so-far lines are exact.` : "";
  }

  function renderSummary(): void {
    const head = ["", "Study", "State", "Strategy", "Objective", "Trials", "Best value", "Best params"];
    clear(
      summary,
      h("thead", null, h("tr", null, ...head.map((c) => h("th", null, c)))),
      h(
        "tbody",
        null,
        loaded.map((l) => {
          const best = l.history.best;
          const paramsText = best ? Object.entries(best.params).map(([k, v]) => `${k}=${typeof v === "number" ? fmt(v) : String(v)}`).join(", ") : "—";
          return h(
            "tr",
            { "data-study": l.id },
            h("td", null, swatch(l.color)),
            h("td", null, link(`/studies/${l.id}`, l.study.name)),
            h("td", null, stateBadge(l.study.state)),
            h("td", null, strategyLabel(l.study)),
            h("td", null, l.history.objectives.map((o) => `${o.metric} ${o.direction === "maximize" ? "↑" : "↓"}`).join(", ")),
            h("td", { class: "num" }, `${l.history.n_scored} scored / ${l.history.n_trials}`),
            h("td", { class: "num" }, best ? h("span", null, fmt(best.value, 6), " ", link(`/trials/${best.trial_id}`, `#${best.number}`)) : "—"),
            h("td", { class: "params" }, paramsText),
          );
        }),
      ),
    );
  }

  xSel.addEventListener("change", () => {
    const q = new URLSearchParams(location.search);
    if (xSel.value === "time") q.set("x", "time");
    else q.delete("x");
    history.replaceState(null, "", `${location.pathname}?${q}`);
    void drawHistory();
  });
  showTrials.addEventListener("change", () => void drawHistory());

  if (problem) {
    clear(message, h("p", null, problem, " Pick them in the ", link("/", "studies list"), "."));
  } else {
    void load();
  }
  return () => purge(chart);
}
