// The study's eight charts. A page load draws them all; after that, a change redraws only
// the figures it changes: a new metric point extends its running trial's curve, a trial
// that starts reporting gets a trace of its own, a finished trial is added to the history
// in place (`layout.meta` of the history says where), and only the figures the trial's
// new state changes are fetched again (at most every few seconds, together).
import { ApiError, api, type StudyRead } from "../../api/client";
import type { Figure } from "plotly.js-dist-min";
import { addTrace, currentMeta, draw, extend, purge, restyle, throttle, traceXs } from "../../charts";
import { clear, h } from "../../dom";
import { isMultiObjective } from "./objectives";

export const KINDS = ["history", "curves", "parallel", "slices", "contour", "importance", "rungs", "timeline"] as const;
// Figures of a study with several objectives, shown (and fetched) only for such studies.
export const MULTI_KINDS = ["pareto", "hypervolume"] as const;
export type Kind = (typeof KINDS)[number] | (typeof MULTI_KINDS)[number];
// The order figures are drawn in: those in view when the page opens first.
export const DRAW_ORDER: readonly Kind[] = ["history", "curves", "parallel", "importance", "slices", "contour", "rungs", "timeline"];
// The figures a trial's move into a state changes (besides the history and the curves,
// which are updated in place).
const CHANGED_BY: Record<string, readonly Kind[]> = {
  completed: ["pareto", "hypervolume", "parallel", "slices", "contour", "importance", "rungs", "timeline"],
  stopped: ["pareto", "hypervolume", "parallel", "slices", "contour", "importance", "rungs", "timeline"],
  paused: ["rungs", "timeline"],
  failed: ["rungs", "timeline"],
  cancelled: ["rungs", "timeline"],
  running: ["timeline"],
  queued: [],
};
const STATE_COLORS: Record<string, string> = {
  completed: "#2563eb", stopped: "#ea580c", paused: "#a855f7", running: "#16a34a",
  failed: "#dc2626", cancelled: "#64748b",
};
const SCORED = new Set(["completed", "stopped"]);

interface LiveTrace {
  trace: number;
  cursor: number;
  busy: boolean;
  again: boolean;
}

export interface ChartsPanel {
  readonly el: HTMLElement;
  /** Draws every chart (the page load, or a resync). */
  drawAll(kinds?: readonly Kind[]): Promise<void>;
  /** Resolves once the page's first chart is drawn (or failed). */
  readonly firstShown: Promise<void>;
  /** The study is known: fills the contour's parameter choices. */
  setStudy(study: StudyRead): void;
  onMetrics(trialId: number): void;
  onTrial(trialId: number, state: string): void;
  /** Points stored while the page loaded, from each running trace's cursor. */
  catchUp(): void;
  destroy(): void;
}

export function createChartsPanel(studyId: number, open: (trialId: number) => void): ChartsPanel {
  const charts = new Map<Kind, HTMLDivElement>();
  const contourX = h("select", { "aria-label": "contour x" });
  const contourY = h("select", { "aria-label": "contour y" });
  // Parallel coordinates are SVG lines; on demand, Plotly's parcoords, whose axes filter
  // the lines by dragging. It is WebGL only, which takes seconds without a GPU.
  const brush = h("input", { type: "checkbox", id: "parallel-brush" });
  for (const kind of [...KINDS, ...MULTI_KINDS]) charts.set(kind, h("div", { class: "chart", id: `chart-${kind}`, "data-kind": kind }));
  const card = (kind: Kind, ...extra: Node[]) =>
    h("section", { class: `card chart-card chart-card-${kind}` }, ...extra, charts.get(kind)!);
  // Added to the page once the study turns out to have several objectives.
  const multiCards = MULTI_KINDS.map((kind) => card(kind));
  let multi = false;
  const enabled = (kind: Kind) => multi || !(MULTI_KINDS as readonly string[]).includes(kind);
  const el = h(
    "div",
    { class: "grid", id: "charts" },
    card("history"),
    card("curves"),
    card("parallel", h("label", { class: "row" }, brush, " filter by dragging on the axes")),
    card("importance"),
    card("slices"),
    card("contour", h("div", { class: "row" }, "x ", contourX, " y ", contourY)),
    card("rungs"),
    card("timeline"),
  );

  let firstDone: () => void = () => {};
  const firstShown = new Promise<void>((resolve) => { firstDone = resolve; });

  // Learning curves: running trials are traces of their own that new points extend.
  const live = new Map<number, LiveTrace>();
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
    const figure = await api.studyPlot(studyId, kind, opts);
    measure(`chart ${kind} fetch`, started);
    return figure;
  }

  async function show(kind: Kind, figureRequest: Promise<Figure>): Promise<void> {
    const chart = charts.get(kind)!;
    try {
      const figure = await figureRequest;
      const started = performance.now();
      await draw(chart, figure, open);
      measure(`chart ${kind} draw`, started);
      if (kind === "curves") {
        const meta = currentMeta(chart);
        metric = String(meta["metric"] ?? "");
        live.clear();
        const entries = (meta["live"] ?? {}) as Record<string, [number, number]>;
        for (const [trialId, [trace, cursor]] of Object.entries(entries)) {
          live.set(Number(trialId), { trace, cursor, busy: false, again: false });
        }
      }
    } catch (err) {
      clear(chart, h("p", { class: "error" }, err instanceof ApiError ? err.detail : String(err)));
    }
  }

  /** Requests the first figure, then, once it has arrived, all the others at once (the
   * server reuses the trials it loaded for the first), and draws them one at a time in
   * `kinds` order, each painted before the next starts: drawing blocks the page, so each
   * chart shows as soon as it is done. The first goes alone so that the server builds
   * it without sharing the CPU with the other seven. */
  async function drawAll(requested?: readonly Kind[]): Promise<void> {
    const kinds = (requested ?? (multi ? [...MULTI_KINDS, ...DRAW_ORDER] : DRAW_ORDER)).filter(enabled);
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
    firstDone();
    for (const [kind, request] of await others) await show(kind, request);
  }

  // Figures a change made stale, fetched together at most every 3 s.
  const stale = new Set<Kind>();
  const redrawStale = throttle(async () => {
    const kinds = [...MULTI_KINDS, ...DRAW_ORDER].filter((k) => stale.has(k));
    stale.clear();
    await drawAll(kinds);
  }, 3000);
  function markStale(...kinds: Kind[]): void {
    const wanted = kinds.filter(enabled);
    wanted.forEach((k) => stale.add(k));
    if (wanted.length) redrawStale();
  }

  async function appendPoints(trialId: number): Promise<void> {
    const curves = charts.get("curves")!;
    let entry = live.get(trialId);
    if (!entry) {
      if (!curves.dataset.painted || !metric || currentMeta(curves)["live"] === undefined) {
        markStale("curves"); // no curves drawn yet ("no points" placeholder)
        return;
      }
      // A trial that starts reporting: a trace of its own, filled from its first point.
      entry = { trace: -1, cursor: 0, busy: true, again: false };
      live.set(trialId, entry);
      try {
        const trial = await api.getTrial(trialId);
        entry.trace = await addTrace(curves, {
          type: "scatter", mode: "lines+markers", x: [], y: [], customdata: [],
          name: `#${trial.number} running`, line: { color: STATE_COLORS["running"], width: 2 }, marker: { size: 4 },
        });
      } catch {
        live.delete(trialId);
        return;
      } finally {
        entry.busy = false;
      }
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
        await extend(curves, entry.trace, xs, ys, xs.map(() => trialId));
      } while (entry.again);
    } finally {
      entry.busy = false;
    }
    // A trial drawn with a forecast band (dashed, to the horizon) gets a new forecast
    // from the server, computed on the points it has now: the chart is redrawn
    // (throttled with every other stale chart), since a band cannot be extended.
    const banded = (currentMeta(curves)["forecast"] ?? []) as number[];
    if (banded.includes(trialId)) markStale("curves");
  }

  /** A trial finished with a value: a marker on the history, in place, unless it beats
   * the best (the staircase may then change anywhere: the history is fetched again). */
  async function addToHistory(trialId: number): Promise<void> {
    const chart = charts.get("history")!;
    const meta = currentMeta(chart);
    const traces = (meta["traces"] ?? {}) as Record<string, number>;
    let trial;
    try {
      trial = await api.getTrial(trialId);
    } catch {
      return;
    }
    const value = typeof trial.value === "number" ? trial.value : NaN;
    if (!SCORED.has(trial.state) || !Number.isFinite(value)) return;
    const best = typeof meta["best"] === "number" ? meta["best"] : null;
    const better = best === null || (meta["direction"] === "maximize" ? value > best : value < best);
    const trace = traces[trial.state];
    if (better || trace === undefined || typeof meta["best_trace"] !== "number") {
      markStale("history");
      return;
    }
    await extend(chart, trace, [trial.number], [value], [trial.id]);
    // The best-so-far line runs to the last finished trial.
    const bestXs = traceXs(chart, meta["best_trace"]);
    const lastX = Number(bestXs[bestXs.length - 1] ?? -Infinity);
    if (trial.number > lastX) await extend(chart, meta["best_trace"], [trial.number], [best!]);
  }

  function onTrial(trialId: number, state: string): void {
    const entry = live.get(trialId);
    if (entry && state !== "running" && entry.trace >= 0) {
      // Its curve stays; it is no longer a running trial's.
      void restyle(charts.get("curves")!, entry.trace, { "line.color": STATE_COLORS[state] ?? "#64748b", "line.width": 1 });
      live.delete(trialId);
    }
    if (SCORED.has(state)) void addToHistory(trialId);
    markStale(...(CHANGED_BY[state] ?? KINDS.filter((k) => k !== "curves")));
  }

  function setStudy(study: StudyRead): void {
    if (!multi && isMultiObjective(study)) {
      // The front and its hypervolume first: they are what such a study is about.
      multi = true;
      el.prepend(...multiCards);
      void drawAll([...MULTI_KINDS]);
    }
    if (contourX.options.length) return;
    const names = Object.keys(study.space).filter((n) => (study.space[n] as { type?: string }).type !== "fixed");
    names.forEach((n, i) => {
      contourX.append(h("option", { value: n, selected: i === 0 }, n));
      contourY.append(h("option", { value: n, selected: i === 1 }, n));
    });
  }

  contourX.addEventListener("change", () => void show("contour", fetchFigure("contour")));
  contourY.addEventListener("change", () => void show("contour", fetchFigure("contour")));
  brush.addEventListener("change", () => void show("parallel", fetchFigure("parallel")));

  return {
    el,
    drawAll,
    firstShown,
    setStudy,
    onMetrics: (trialId) => void appendPoints(trialId),
    onTrial,
    catchUp: () => {
      for (const trialId of live.keys()) void appendPoints(trialId);
      // Trials that finished before the live stream opened: the front is fetched again
      // (its figure is cached per study version, so an unchanged one costs little).
      markStale(...MULTI_KINDS);
    },
    destroy: () => charts.forEach((chart) => purge(chart)),
  };
}
