import { ApiError, api, type EventRead, type TrialRead } from "../api/client";
import { subscribe, type LiveChange } from "../api/live";
import { currentMeta, draw, extend, purge, throttle } from "../charts";
import { clear, duration, fmt, h, link, stateBadge } from "../dom";
import { navigate } from "../main";
import { lineagePanel } from "./population";
import { scalePanel } from "./scale";
import { constraintText, type MultiTrial } from "./study/objectives";
import { createNotesPanel, createTagsEditor } from "./study/notes";

const LOG_KEEP = 200_000; // characters of the log tail kept on the page

export function trialPage(root: HTMLElement, _params: URLSearchParams, id: number): () => void {
  let trial: TrialRead | null = null;
  let studyName = "";
  let bestTrialId: number | null = null; // the study's best: "compare with best"
  const head = h("div");
  const message = h("p", { class: "error", role: "alert" });
  const paramsBody = h("tbody");
  const infoBody = h("tbody");
  const chart = h("div", { class: "chart", id: "trial-curves" });
  const eventsBody = h("tbody");
  const log = h("pre", { class: "log", id: "log" });
  const follow = h("input", { type: "checkbox", checked: true, "aria-label": "follow log" });

  // A person's notes (Markdown) and tags on the trial (./study/notes.ts).
  const notes = createNotesPanel("trial-notes", (text) => api.updateTrial(id, { notes: text }));
  const tags = createTagsEditor(async (change) => (await api.updateTrial(id, change)).tags ?? []);
  notes.el.prepend(tags.el);

  root.append(
    h("section", { class: "card" }, head, message),
    notes.el,
    h(
      "div",
      { class: "grid" },
      h("section", { class: "card" }, h("h2", null, "Parameters"), h("table", { class: "table", id: "params" }, paramsBody)),
      h("section", { class: "card" }, h("h2", null, "Details"), h("table", { class: "table" }, infoBody)),
    ),
    h("section", { class: "card" }, chart),
    h(
      "section",
      { class: "card" },
      h("h2", null, "Decisions and state changes"),
      h(
        "table",
        { class: "table", id: "events" },
        h("thead", null, h("tr", null, ...["When", "Kind", "Change", "By", "Reason"].map((c) => h("th", null, c)))),
        eventsBody,
      ),
    ),
    h(
      "section",
      { class: "card" },
      h("div", { class: "row between" }, h("h2", null, "Log"), h("label", null, follow, " follow")),
      log,
    ),
    scalePanel(id),
    lineagePanel(id),
  );

  function renderTrial(t: TrialRead): void {
    const running = t.state === "running" || t.state === "queued" || t.state === "paused";
    clear(
      head,
      h("div", { class: "row between" },
        h("h1", null, `Trial #${t.number} `, stateBadge(t.state)),
        h(
          "div",
          { class: "row actions" },
          link(`/studies/${t.study_id}`, "← ", studyName || `study ${t.study_id}`),
          bestTrialId !== null && bestTrialId !== id
            ? link(`/studies/${t.study_id}/compare?trials=${id},${bestTrialId}`, h("button", { type: "button", id: "compare-best" }, "Compare with best"))
            : null,
          running ? h("button", { type: "button", id: "stop-trial", onclick: () => act(() => api.cancelTrial(id)) }, "Stop") : null,
          h("button", {
            type: "button",
            id: "retry-trial",
            onclick: () => act(async () => {
              const retried = await api.retryTrial(id);
              navigate(`/trials/${retried.id}`);
            }),
          }, "Retry"),
        ),
      ),
    );
    clear(paramsBody, Object.entries(t.params).map(([k, v]) => h("tr", null, h("th", null, k), h("td", { class: "num" }, typeof v === "number" ? fmt(v, 6) : JSON.stringify(v)))));
    const rows: [string, string][] = [
      ["value", fmt(t.value as number | null, 6)],
      ...resultRows(t as MultiTrial),
      ["state", t.state],
      ["worker", t.worker ?? "—"],
      ["budget", fmt(t.budget as number | null)],
      ["rung", String(t.rung)],
      ["last step", fmt(t.last_step as number | null)],
      ["duration", duration(t.duration_s)],
      ["retries / resumes", `${t.retries} / ${t.resumes}`],
      ["source", t.source],
      ["error", t.error ?? "—"],
    ];
    clear(infoBody, rows.map(([k, v]) => h("tr", null, h("th", null, k), h("td", null, v))));
  }

  /** Several objectives, constraints (which one broke, by how much), the Pareto flag. */
  function resultRows(t: MultiTrial): [string, string][] {
    const out: [string, string][] = [];
    if (t.values && t.values.length > 1) out.push(["objective values", t.values.map((v) => fmt(v, 6)).join(", ")]);
    for (const c of t.constraints ?? []) {
      const shown = constraintText(c);
      out.push([`${c.metric} ${c.op} ${fmt(c.limit)}`, shown.broken ? `${shown.text}: constraint broken` : shown.text]);
    }
    if (t.constraints?.length || (t.values && t.values.length > 1)) {
      const feasible = t.feasible === true ? "yes" : t.feasible === false ? "no" : "not known yet";
      out.push(["feasible", feasible], ["on the Pareto front", t.is_pareto ? "yes" : "no"]);
    }
    return out;
  }

  async function act(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      message.textContent = "";
      await loadTrial();
    } catch (err) {
      message.textContent = err instanceof ApiError ? err.detail : String(err);
    }
  }

  async function loadTrial(): Promise<void> {
    try {
      const read = await api.getTrial(id);
      trial = read;
      renderTrial(read);
      notes.show(read);
      tags.show(read.tags ?? []);
    } catch (err) {
      message.textContent = err instanceof ApiError ? err.detail : String(err);
    }
  }

  // Metrics: the figure once, then only points newer than its cursor.
  let cursor = 0;
  let traces: Record<string, number> = {};
  // Metrics drawn with one point: their axes are fixed around it (see the server's figure).
  let single = new Set<string>();
  async function drawCurves(): Promise<void> {
    const figure = await api.trialPlot(id);
    await draw(chart, figure);
    const meta = currentMeta(chart);
    cursor = Number(meta["cursor"] ?? 0);
    traces = (meta["traces"] ?? {}) as Record<string, number>;
    single = new Set((meta["single"] ?? []) as string[]);
  }
  const appendPoints = throttle(async () => {
    const page = await api.metrics(id, cursor);
    cursor = page.cursor;
    const byName = new Map<string, { xs: number[]; ys: number[] }>();
    for (const p of page.items) {
      const entry = byName.get(p.name) ?? { xs: [], ys: [] };
      entry.xs.push(p.step);
      entry.ys.push(typeof p.value === "number" ? p.value : NaN);
      byName.set(p.name, entry);
    }
    if ([...byName.keys()].some((n) => !(n in traces) || single.has(n))) {
      await drawCurves(); // a new metric: a new panel; a second point: axes of its own
      return;
    }
    for (const [name, { xs, ys }] of byName) await extend(chart, traces[name]!, xs, ys);
  }, 150);

  // Events: appended with since=.
  let eventCursor = 0;
  const loadEvents = throttle(async () => {
    const list = await api.trialEvents(id, eventCursor);
    eventCursor = list.cursor;
    eventsBody.append(...list.items.map(eventRow));
  }, 500);

  function eventRow(e: EventRead): HTMLTableRowElement {
    const change = e.from_state || e.to_state ? `${e.from_state ?? "—"} → ${e.to_state ?? "—"}` : "";
    const data = Object.keys(e.data).length ? ` ${JSON.stringify(e.data)}` : "";
    return h(
      "tr",
      null,
      h("td", { class: "muted" }, new Date(e.at).toLocaleTimeString()),
      h("td", null, e.kind),
      h("td", null, change),
      h("td", null, e.actor),
      h("td", null, e.reason, h("span", { class: "muted" }, data)),
    );
  }

  // Log tail: from the last offset on each change.
  let logOffset = 0;
  const loadLog = throttle(async () => {
    for (;;) {
      const chunk = await api.trialLogs(id, logOffset);
      if (chunk.next_offset === logOffset) break;
      logOffset = chunk.next_offset;
      log.textContent = ((log.textContent ?? "") + chunk.text).slice(-LOG_KEEP);
      if (!chunk.text) break;
    }
    if (follow.checked) log.scrollTop = log.scrollHeight;
  }, 250);

  function onChange(change: LiveChange): void {
    const trialId = Number(change.data["trial_id"] ?? change.data["id"]);
    if (change.kind === "resync") {
      void loadTrial();
      appendPoints();
      loadEvents();
      loadLog();
      return;
    }
    if (trialId !== id) return;
    if (change.kind === "metrics") {
      appendPoints();
      loadEvents();
    } else if (change.kind === "log") {
      loadLog();
    } else if (change.kind === "trial" || change.kind === "event") {
      void loadTrial();
      loadEvents();
    }
  }

  let stream: { close(): void } | null = null;
  void (async () => {
    await loadTrial();
    const loaded = trial as TrialRead | null;
    if (!loaded) return;
    try {
      const study = await api.getStudy(loaded.study_id);
      studyName = study.name;
      bestTrialId = study.best_trial_id ?? null;
      renderTrial(trial ?? loaded);
    } catch {
      /* the link keeps the study's number */
    }
    loadEvents();
    loadLog();
    try {
      await drawCurves();
    } catch (err) {
      clear(chart, h("p", { class: "error" }, String((err as Error).message)));
    }
    // On every (re)connection, catch up with what changed before the stream was live:
    // everything here continues from a cursor, so this costs little.
    stream = subscribe(`/studies/${loaded.study_id}/events`, onChange, () => {
      onChange({ kind: "resync", data: { study_id: loaded.study_id } });
    });
  })();
  return () => {
    stream?.close();
    purge(chart);
  };
}
