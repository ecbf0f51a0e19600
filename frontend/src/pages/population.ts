// Population-based training (pbt, pb2): the population over time with its exploits, each
// member's hyperparameter schedule, and a trial's lineage. Reads GET
// /studies/{id}/population and GET /trials/{id}/schedule (app/population).
import { ApiError, request, type TrialRead } from "../api/client";
import { subscribe, type LiveChange } from "../api/live";
import { draw, purge, throttle } from "../charts";
import { clear, fmt, h, link, stateBadge } from "../dom";
import { navigate } from "../main";

interface ScheduleEntry {
  step: number;
  params: Record<string, unknown>;
}

interface Exploit {
  step: number;
  donor_id: number;
  donor_number: number;
  donor_step: number;
  donor_value: number | string | null;
  value: number | string | null;
  from_params: Record<string, unknown>;
  to_params: Record<string, unknown>;
}

interface Member {
  trial_id: number;
  number: number;
  state: string;
  value: number | string | null;
  budget: number | null;
  params: Record<string, unknown>;
  schedule: ScheduleEntry[];
  scores: Record<string, number | string | null>;
  lineage: Exploit[];
  replay_of: number | null;
}

interface Population {
  strategy: string;
  metric: string;
  direction: string;
  fidelity_param: string | null;
  perturbation_interval: number | null;
  population_size: number | null;
  members: Member[];
  replays: Member[];
  edges: { donor_id: number; receiver_id: number; step: number; donor_step: number }[];
}

interface Schedule {
  trial_id: number;
  schedule: ScheduleEntry[];
  lineage: Exploit[];
  replay_of: number | null;
}

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function num(value: unknown): number | null {
  const n = typeof value === "number" ? value : typeof value === "string" ? Number(value) : NaN;
  return Number.isFinite(n) ? n : null;
}

/** Numeric parameters of a schedule (the ones a step chart can show). */
function numericParams(members: { schedule: ScheduleEntry[] }[]): string[] {
  const names = new Set<string>();
  for (const m of members) for (const e of m.schedule) for (const [k, v] of Object.entries(e.params)) if (typeof v === "number") names.add(k);
  return [...names].sort();
}

/** A schedule as a step line from 0 to `end`: each value holds from its step on. */
function stepLine(schedule: ScheduleEntry[], name: string, end: number): { x: number[]; y: (number | null)[] } {
  const x: number[] = [];
  const y: (number | null)[] = [];
  for (const entry of schedule) {
    x.push(entry.step);
    y.push(num(entry.params[name]));
  }
  if (schedule.length) {
    x.push(Math.max(end, schedule[schedule.length - 1]!.step));
    y.push(num(schedule[schedule.length - 1]!.params[name]));
  }
  return { x, y };
}

function scheduleFigure(rows: { label: string; schedule: ScheduleEntry[]; end: number; color: string }[], name: string, xTitle: string) {
  const log = rows.every((r) => r.schedule.every((e) => (num(e.params[name]) ?? 1) > 0));
  return {
    data: rows.map((r) => ({ type: "scatter", mode: "lines", line: { shape: "hv", color: r.color }, name: r.label, ...stepLine(r.schedule, name, r.end) })),
    layout: {
      title: { text: `${name} schedule` },
      xaxis: { title: { text: xTitle } },
      yaxis: { title: { text: name }, type: log ? "log" : "linear" },
      margin: { t: 40, r: 10 },
      height: 320,
    },
  };
}

export function populationPage(root: HTMLElement, _params: URLSearchParams, studyId: number): () => void {
  const head = h("div");
  const message = h("p", { class: "error", role: "alert" });
  const overTime = h("div", { class: "chart", id: "population-chart" });
  const paramSelect = h("select", { id: "schedule-param", "aria-label": "parameter" });
  const scheduleChart = h("div", { class: "chart", id: "schedule-chart" });
  const exploitsBody = h("tbody");
  const replayNote = h("p", { class: "muted", id: "replay-note" });
  let data: Population | null = null;

  root.append(
    h("section", { class: "card" }, head, message),
    h("section", { class: "card" }, h("h2", null, "Members over time"), h("p", { class: "muted" }, "Each member's score at each boundary; dashed arrows go from the donor whose checkpoint was copied to the member that exploited it."), overTime),
    h("section", { class: "card" }, h("div", { class: "row between" }, h("h2", null, "Schedules"), h("label", null, "parameter ", paramSelect)), scheduleChart),
    h(
      "section",
      { class: "card" },
      h("h2", null, "Exploits"),
      h(
        "table",
        { class: "table", id: "exploits" },
        h("thead", null, h("tr", null, ...["At", "Member", "Score", "Copied from", "Donor score", "New values"].map((c) => h("th", null, c)))),
        exploitsBody,
      ),
    ),
  );

  async function replay(): Promise<void> {
    try {
      const trial = await request<TrialRead>("POST", `/studies/${studyId}/replay`, {});
      clear(replayNote, "Queued ", link(`/trials/${trial.id}`, `trial #${trial.number}`), ": it runs the best member's schedule from scratch.");
    } catch (err) {
      clear(replayNote, h("span", { class: "error" }, (err as Error).message));
    }
  }

  function renderHead(p: Population): void {
    clear(
      head,
      h(
        "div",
        { class: "row between" },
        h("h1", null, `Population of study #${studyId}`),
        h("div", { class: "row actions" }, link(`/studies/${studyId}`, "Back to the study"), h("button", { type: "button", id: "replay-best", onclick: () => void replay() }, "Replay the best schedule")),
      ),
      h(
        "p",
        { class: "muted" },
        `${p.strategy} · ${p.members.length} of ${p.population_size ?? "?"} members · ${p.direction} ${p.metric} · exploits every ${fmt(p.perturbation_interval)} ${p.fidelity_param ?? ""}`,
      ),
      replayNote,
    );
  }

  function render(p: Population): void {
    renderHead(p);
    const xTitle = p.fidelity_param ?? "step";
    const color = new Map(p.members.map((m, i) => [m.trial_id, COLORS[i % COLORS.length]!]));
    const traces: Record<string, unknown>[] = p.members.map((m) => {
      const points = Object.entries(m.scores)
        .map(([step, v]) => [Number(step), num(v)] as const)
        .filter(([, v]) => v !== null)
        .sort((a, b) => a[0] - b[0]);
      return {
        type: "scatter",
        mode: "lines+markers",
        name: `#${m.number}`,
        x: points.map(([s]) => s),
        y: points.map(([, v]) => v),
        line: { color: color.get(m.trial_id) },
        customdata: points.map(() => m.trial_id),
      };
    });
    const annotations = [];
    for (const m of p.members) {
      for (const e of m.lineage) {
        const from = num(e.donor_value);
        const to = num(e.value);
        if (from === null || to === null) continue;
        annotations.push({
          x: e.step, y: to, ax: e.donor_step, ay: from, xref: "x", yref: "y", axref: "x", ayref: "y",
          showarrow: true, arrowhead: 2, arrowwidth: 1.5, arrowcolor: color.get(e.donor_id) ?? "#555",
          text: "", hovertext: `#${e.donor_number} → #${m.number}`,
        });
        traces.push({
          type: "scatter", mode: "lines", showlegend: false, hoverinfo: "text",
          text: [`copied #${e.donor_number} → #${m.number}`, `copied #${e.donor_number} → #${m.number}`],
          x: [e.donor_step, e.step], y: [from, to], line: { dash: "dot", width: 1, color: color.get(e.donor_id) ?? "#555" },
        });
      }
    }
    void draw(
      overTime,
      {
        data: traces,
        layout: {
          xaxis: { title: { text: xTitle } },
          yaxis: { title: { text: p.metric } },
          annotations,
          margin: { t: 20, r: 10 },
          height: 360,
          meta: { edges: p.edges.length },
        },
      } as never,
      (trialId) => navigate(`/trials/${trialId}`),
    );
    overTime.dataset.edges = String(p.edges.length);

    const names = numericParams(p.members);
    const chosen = names.includes(paramSelect.value) ? paramSelect.value : names[0] ?? "";
    clear(paramSelect, ...names.map((n) => h("option", { value: n }, n)));
    paramSelect.value = chosen;
    if (chosen) {
      const end = Math.max(0, ...p.members.map((m) => m.budget ?? 0));
      const rows = [...p.members, ...p.replays].map((m) => ({
        label: m.replay_of !== null ? `replay #${m.number}` : `#${m.number}`,
        schedule: m.schedule,
        end: m.budget ?? end,
        color: m.replay_of !== null ? "#000" : color.get(m.trial_id) ?? "#555",
      }));
      void draw(scheduleChart, scheduleFigure(rows, chosen, xTitle) as never);
    }

    const rows = p.members
      .flatMap((m) => m.lineage.map((e) => ({ m, e })))
      .sort((a, b) => a.e.step - b.e.step || a.m.number - b.m.number);
    clear(
      exploitsBody,
      ...rows.map(({ m, e }) =>
        h(
          "tr",
          null,
          h("td", null, `${xTitle} ${fmt(e.step)}`),
          h("td", null, link(`/trials/${m.trial_id}`, `#${m.number}`), " ", stateBadge(m.state)),
          h("td", null, fmt(num(e.value))),
          h("td", null, link(`/trials/${e.donor_id}`, `#${e.donor_number}`), ` (${xTitle} ${fmt(e.donor_step)})`),
          h("td", null, fmt(num(e.donor_value))),
          h("td", null, Object.entries(e.to_params).map(([k, v]) => `${k} ${fmt(e.from_params[k] as number)} → ${fmt(v as number)}`).join(", ")),
        ),
      ),
    );
    if (!rows.length) exploitsBody.append(h("tr", null, h("td", { colspan: 6, class: "muted" }, "No member has exploited yet.")));
  }

  async function load(): Promise<void> {
    try {
      data = await request<Population>("GET", `/studies/${studyId}/population`);
      message.textContent = "";
      render(data);
    } catch (err) {
      message.textContent = err instanceof ApiError ? err.detail : String(err);
    }
  }

  paramSelect.addEventListener("change", () => data && render(data));
  const reload = throttle(load, 1000);
  void load();
  const stream = subscribe(`/studies/${studyId}/events`, (change: LiveChange) => {
    if (change.kind === "trial" || change.kind === "event" || change.kind === "metrics") reload();
  }, () => reload());
  return () => {
    stream.close();
    purge(overTime);
    purge(scheduleChart);
  };
}

/** The trial page's lineage: the values its weights were trained with, per interval, and
 * the checkpoints it copied. Empty (hidden) for a trial without a schedule. */
export function lineagePanel(trialId: number): HTMLElement {
  const body = h("div");
  const chart = h("div", { class: "chart", id: "lineage-chart" });
  const section = h("section", { class: "card", id: "lineage-panel", hidden: true }, h("h2", null, "Schedule and lineage"), body, chart);
  void (async () => {
    let s: Schedule;
    try {
      s = await request<Schedule>("GET", `/trials/${trialId}/schedule`);
    } catch {
      return;
    }
    if (!s.schedule.length) return;
    section.hidden = false;
    const items = s.lineage.map((e) =>
      h(
        "li",
        null,
        `at step ${fmt(e.step)} (score ${fmt(num(e.value))}): copied the checkpoint of `,
        link(`/trials/${e.donor_id}`, `trial #${e.donor_number}`),
        ` at step ${fmt(e.donor_step)} (score ${fmt(num(e.donor_value))}); `,
        Object.entries(e.to_params).map(([k, v]) => `${k} ${fmt(e.from_params[k] as number)} → ${fmt(v as number)}`).join(", "),
      ),
    );
    clear(
      body,
      s.replay_of !== null ? h("p", null, "Replays the schedule of ", link(`/trials/${s.replay_of}`, `trial ${s.replay_of}`), " from scratch.") : null,
      items.length ? h("ol", { id: "lineage" }, ...items) : h("p", { class: "muted", id: "lineage" }, "No exploit: its weights are its own."),
      h(
        "table",
        { class: "table", id: "schedule" },
        h("thead", null, h("tr", null, h("th", null, "From step"), h("th", null, "Values"))),
        h("tbody", null, ...s.schedule.map((e) => h("tr", null, h("td", null, fmt(e.step)), h("td", null, Object.entries(e.params).map(([k, v]) => `${k} ${fmt(v as number)}`).join(", "))))),
      ),
    );
    const names = numericParams([s]);
    if (names[0]) {
      const end = Math.max(...s.schedule.map((e) => e.step)) + 1;
      void draw(chart, scheduleFigure([{ label: names[0], schedule: s.schedule, end, color: COLORS[0]! }], names[0], "step") as never);
    }
  })();
  return section;
}
