import { ApiError, api, type StudyRead, type StudySummary, type TrialRead } from "../api/client";
import { subscribe, type LiveChange } from "../api/live";
import type { Figure } from "plotly.js-dist-min";
import { currentMeta, draw, extend, loadPlotly, purge, throttle } from "../charts";
import { clear, duration, fmt, h, link, stateBadge } from "../dom";
import { navigate } from "../main";
import { progress, strategyLabel } from "./studies";

const KINDS = ["history", "curves", "parallel", "slices", "contour", "importance", "rungs", "timeline"] as const;
type Kind = (typeof KINDS)[number];
// The order figures are drawn in: those in view when the page opens first.
const DRAW_ORDER: readonly Kind[] = ["history", "curves", "parallel", "importance", "slices", "contour", "rungs", "timeline"];
const ORDERINGS: [string, string][] = [
  ["value", "value ↑"], ["-value", "value ↓"], ["number", "number ↑"], ["-number", "number ↓"],
  ["-started_at", "newest started"], ["-finished_at", "newest finished"],
];
const STATES = ["completed", "running", "stopped", "paused", "queued", "failed", "cancelled"];

export function studyPage(root: HTMLElement, _params: URLSearchParams, id: number): () => void {
  let study: StudyRead | null = null;
  const charts = new Map<Kind, HTMLDivElement>();
  const head = h("div", { class: "study-head" });
  const figures = h("div", { class: "figures" });
  const message = h("p", { class: "error", role: "alert" });
  const contourX = h("select", { "aria-label": "contour x" });
  const contourY = h("select", { "aria-label": "contour y" });
  // Parallel coordinates are SVG lines; on demand, Plotly's parcoords, whose axes filter
  // the lines by dragging. It is WebGL only, which takes seconds without a GPU.
  const brush = h("input", { type: "checkbox", id: "parallel-brush" });

  for (const kind of KINDS) {
    const el = h("div", { class: "chart", id: `chart-${kind}`, "data-kind": kind });
    charts.set(kind, el);
  }
  const chartCard = (kind: Kind, ...extra: Node[]) =>
    h("section", { class: `card chart-card chart-card-${kind}` }, ...extra, charts.get(kind)!);

  // Trials table: sort, filter and pages all on the server.
  const orderSel = h("select", { "aria-label": "order by", id: "order-by" }, ...ORDERINGS.map(([v, l]) => h("option", { value: v }, l)));
  const stateBoxes = STATES.map((s) => h("input", { type: "checkbox", value: s, "data-state": s }));
  const tbody = h("tbody");
  const pager = h("span", { class: "muted" });
  const prevBtn = h("button", { type: "button" }, "‹ Prev");
  const nextBtn = h("button", { type: "button" }, "Next ›");
  const cursors: (string | null)[] = [null];
  let page = 0;
  let nextCursor: string | null = null;

  root.append(
    h("section", { class: "card" }, head, message),
    h("div", { class: "figures-grid" }, figures),
    h(
      "div",
      { class: "grid" },
      chartCard("history"),
      chartCard("curves"),
      chartCard("parallel", h("label", { class: "row" }, brush, " filter by dragging on the axes")),
      chartCard("importance"),
      chartCard("slices"),
      chartCard("contour", h("div", { class: "row" }, "x ", contourX, " y ", contourY)),
      chartCard("rungs"),
      chartCard("timeline"),
    ),
    h(
      "section",
      { class: "card" },
      h("div", { class: "row between" }, h("h2", null, "Trials"), h("div", { class: "row" }, "Sort ", orderSel)),
      h("div", { class: "row filters" }, "State: ", ...stateBoxes.map((b) => h("label", null, b, " ", b.value))),
      h(
        "table",
        { class: "table", id: "trials" },
        h("thead", null, h("tr", null, ...["#", "State", "Value", "Params", "Worker", "Duration", ""].map((c) => h("th", null, c)))),
        tbody,
      ),
      h("div", { class: "row" }, prevBtn, nextBtn, pager),
    ),
  );

  const open = (trialId: number) => navigate(`/trials/${trialId}`);

  async function loadStudy(): Promise<void> {
    try {
      study = await api.getStudy(id);
    } catch (err) {
      message.textContent = err instanceof ApiError ? err.detail : String(err);
      return;
    }
    renderHead(study);
    const names = Object.keys(study.space).filter((n) => (study!.space[n] as { type?: string }).type !== "fixed");
    if (!contourX.options.length) {
      names.forEach((n, i) => {
        contourX.append(h("option", { value: n, selected: i === 0 }, n));
        contourY.append(h("option", { value: n, selected: i === 1 }, n));
      });
    }
  }

  function actionButton(label: string, action: () => Promise<unknown>, attrs: Record<string, string> = {}): HTMLButtonElement {
    return h(
      "button",
      {
        type: "button",
        ...attrs,
        onclick: async () => {
          try {
            await action();
            message.textContent = "";
            await loadStudy();
          } catch (err) {
            message.textContent = err instanceof ApiError ? err.detail : String(err);
          }
        },
      },
      label,
    );
  }

  function renderHead(s: StudyRead): void {
    const paramsInput = h("textarea", { rows: 2, cols: 40, placeholder: '{"lr": 0.001, ...}', "aria-label": "trial params" });
    const addForm = h(
      "form",
      {
        class: "row add-trial",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          try {
            const params = JSON.parse(paramsInput.value || "{}") as Record<string, unknown>;
            await api.addTrial(id, { params, queue: true });
            paramsInput.value = "";
            message.textContent = "Trial queued.";
          } catch (err) {
            message.textContent = err instanceof ApiError ? `${err.field ?? ""} ${err.detail}` : String(err);
          }
        },
      },
      paramsInput,
      h("button", { type: "submit" }, "Add trial"),
    );
    clear(
      head,
      h("div", { class: "row between" },
        h("h1", { id: "study-name" }, s.name, " ", stateBadge(s.state)),
        h(
          "div",
          { class: "row actions" },
          s.state === "running" ? actionButton("Pause", () => api.updateStudy(id, { state: "paused" }), { id: "pause" }) : null,
          s.state === "paused" ? actionButton("Resume", () => api.updateStudy(id, { state: "running" }), { id: "resume" }) : null,
          s.state === "running" || s.state === "paused"
            ? actionButton("Stop", () => api.updateStudy(id, { state: "stopped" }), { id: "stop-study" })
            : null,
          h("button", { type: "button", onclick: () => navigate(`/studies/new?clone=${id}`) }, "Clone"),
          h("a", { href: api.csvUrl(id), download: `study-${id}-trials.csv`, class: "button" }, "Export CSV"),
        ),
      ),
      h("p", { class: "muted" },
        `${strategyLabel(s)} · ${s.objective.direction} ${s.objective.metric} · ${progress(s)}`,
        s.state_reason ? ` · ${s.state_reason}` : ""),
      // Lineage: a follow-up (promoted, warm-started or extended) links to its parent.
      s.parent_study_id != null
        ? h("p", { class: "muted", id: "lineage" }, "Follow-up of ", link(`/studies/${s.parent_study_id}`, `study ${s.parent_study_id}`))
        : null,
      h("details", null, h("summary", null, "Add a trial with your own parameters"), addForm),
    );
  }

  function renderSummary(sum: StudySummary): void {
    const card = (label: string, value: string, id2: string) =>
      h("div", { class: "figure", id: id2 }, h("div", { class: "figure-value" }, value), h("div", { class: "figure-label" }, label));
    const counts = Object.entries(sum.trial_counts).map(([k, v]) => `${v} ${k}`).join(" · ") || "none";
    clear(
      figures,
      card("best value", fmt(sum.best_value), "fig-best"),
      card("trials", String(sum.n_trials), "fig-trials"),
      card("by state", counts, "fig-states"),
      card("compute used", duration(sum.compute_used_s), "fig-used"),
      card("saved by early stopping", `${duration(sum.compute_saved_s)} (${fmt(sum.steps_saved, 3)} steps)`, "fig-saved"),
    );
  }

  async function loadSummary(): Promise<void> {
    try {
      renderSummary(await api.summary(id));
    } catch {
      /* the next change retries */
    }
  }

  // Learning curves: running trials are traces of their own that new points extend.
  const live = new Map<number, { trace: number; cursor: number; busy: boolean; again: boolean }>();
  let metric = "";

  // Per figure, `performance.measure` entries "chart <kind> fetch" (request and JSON
  // parsing) and "chart <kind> draw" (Plotly and the paint) show where a page load goes;
  // only the latest of each is kept, so live redraws do not pile them up.
  function measure(name: string, start: number): void {
    performance.clearMeasures(name);
    performance.measure(name, { start, end: performance.now() });
  }

  async function fetchFigure(kind: Kind): Promise<Figure> {
    // Until the study is loaded the selects are empty and the server picks the same
    // default pair as they will.
    const opts: Record<string, string> =
      kind === "contour" ? { x: contourX.value, y: contourY.value } : kind === "parallel" && brush.checked ? { brush: "true" } : {};
    const started = performance.now();
    const figure = await api.studyPlot(id, kind, opts);
    measure(`chart ${kind} fetch`, started);
    return figure;
  }

  async function drawKind(kind: Kind): Promise<void> {
    await show(kind, fetchFigure(kind));
  }

  async function show(kind: Kind, figureRequest: Promise<Figure>): Promise<void> {
    const el = charts.get(kind)!;
    try {
      const figure = await figureRequest;
      const started = performance.now();
      await draw(el, figure, open);
      measure(`chart ${kind} draw`, started);
      if (kind === "curves") {
        const meta = currentMeta(el);
        metric = String(meta["metric"] ?? "");
        live.clear();
        const entries = (meta["live"] ?? {}) as Record<string, [number, number]>;
        for (const [trialId, [trace, cursor]] of Object.entries(entries)) {
          live.set(Number(trialId), { trace, cursor, busy: false, again: false });
        }
      }
    } catch (err) {
      clear(el, h("p", { class: "error" }, err instanceof ApiError ? err.detail : String(err)));
    }
  }

  async function appendPoints(trialId: number): Promise<void> {
    const entry = live.get(trialId);
    if (!entry) {
      refreshCurves();
      return;
    }
    if (entry.busy) {
      entry.again = true;
      return;
    }
    entry.busy = true;
    try {
      do {
        entry.again = false;
        const page = await api.metrics(trialId, entry.cursor, metric);
        entry.cursor = page.cursor;
        const xs = page.items.map((p) => p.step);
        const ys = page.items.map((p) => (typeof p.value === "number" ? p.value : NaN));
        await extend(charts.get("curves")!, entry.trace, xs, ys);
      } while (entry.again);
    } finally {
      entry.busy = false;
    }
  }

  async function loadTrials(): Promise<void> {
    const states = stateBoxes.filter((b) => b.checked).map((b) => b.value);
    try {
      const list = await api.listTrials(id, { order_by: orderSel.value, state: states, cursor: cursors[page], limit: 20 });
      nextCursor = list.next_cursor;
      clear(tbody, list.items.map(trialRow));
      if (!list.items.length) tbody.append(h("tr", null, h("td", { colspan: 7, class: "muted" }, "No trials.")));
      pager.textContent = `page ${page + 1}`;
      prevBtn.disabled = page === 0;
      nextBtn.disabled = !nextCursor;
    } catch (err) {
      clear(tbody, h("tr", null, h("td", { colspan: 7, class: "error" }, String((err as Error).message))));
    }
  }

  function trialRow(t: TrialRead): HTMLTableRowElement {
    const params = Object.entries(t.params).map(([k, v]) => `${k}=${typeof v === "number" ? fmt(v) : String(v)}`).join(", ");
    return h(
      "tr",
      { "data-trial": t.id },
      h("td", null, link(`/trials/${t.id}`, `#${t.number}`)),
      h("td", null, stateBadge(t.state)),
      h("td", { class: "num" }, fmt(t.value as number | null)),
      h("td", { class: "params" }, params),
      h("td", null, t.worker ?? "—"),
      h("td", null, duration(t.duration_s)),
      h("td", null, t.state === "running" || t.state === "queued"
        ? h("button", { type: "button", class: "small", onclick: async () => { await api.cancelTrial(t.id); refreshTable(); } }, "Stop")
        : null),
    );
  }

  orderSel.addEventListener("change", () => { page = 0; cursors.length = 1; void loadTrials(); });
  stateBoxes.forEach((b) => b.addEventListener("change", () => { page = 0; cursors.length = 1; void loadTrials(); }));
  prevBtn.addEventListener("click", () => { if (page > 0) { page--; void loadTrials(); } });
  nextBtn.addEventListener("click", () => {
    if (!nextCursor) return;
    cursors[page + 1] = nextCursor;
    page++;
    void loadTrials();
  });
  contourX.addEventListener("change", () => void drawKind("contour"));
  contourY.addEventListener("change", () => void drawKind("contour"));
  brush.addEventListener("change", () => void drawKind("parallel"));

  const refreshHead = throttle(async () => { await loadStudy(); await loadSummary(); }, 1000);
  const refreshTable = throttle(loadTrials, 1500);
  const refreshCurves = throttle(() => drawKind("curves"), 2000);
  const refreshCharts = throttle(async () => {
    await drawAll(DRAW_ORDER.filter((k) => k !== "curves"));
  }, 3000);

  function onChange(change: LiveChange): void {
    const data = change.data;
    switch (change.kind) {
      case "metrics":
        void appendPoints(Number(data["trial_id"]));
        break;
      case "trial":
        refreshHead();
        refreshTable();
        refreshCurves();
        refreshCharts();
        break;
      case "study":
        refreshHead();
        break;
      case "resync":
        refreshHead();
        refreshTable();
        refreshCurves();
        refreshCharts();
        break;
    }
  }

  /** Requests the first figure, then, once it has arrived, all the others at once (the
   * server reuses the trials it loaded for the first), and draws them one at a time in
   * `kinds` order, each painted before the next starts: drawing blocks the page, so each
   * chart shows as soon as it is done. The first goes alone so that the server builds
   * it without sharing the CPU with the other seven. */
  async function drawAll(kinds: readonly Kind[]): Promise<void> {
    const [first, ...rest] = kinds;
    if (first === undefined) return;
    const firstRequest = fetchFigure(first);
    const others = firstRequest
      .catch(() => undefined)
      .then(() =>
        rest.map((kind) => {
          const request = fetchFigure(kind);
          request.catch(() => undefined); // reported by show() when its turn comes
          return [kind, request] as const;
        }),
      );
    await show(first, firstRequest);
    for (const [kind, request] of await others) await show(kind, request);
  }

  let stream: { close(): void } | null = null;
  void (async () => {
    void loadPlotly(); // downloads while the study and its figures are requested
    const figuresDrawn = drawAll(DRAW_ORDER);
    await loadStudy();
    if (!study) return;
    void loadSummary();
    void loadTrials();
    await figuresDrawn;
    document.body.dataset.allCharts = String(Date.now());
    stream = subscribe(`/studies/${id}/events`, onChange, (reconnected) => {
      if (reconnected) {
        onChange({ kind: "resync", data: { study_id: id } });
        return;
      }
      // Catch up with what changed while the charts loaded, from the cursors.
      refreshHead();
      refreshTable();
      for (const trialId of live.keys()) void appendPoints(trialId);
    });
  })();

  return () => {
    stream?.close();
    charts.forEach((el) => purge(el));
  };
}
