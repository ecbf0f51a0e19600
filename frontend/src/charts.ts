// Draws server-built Plotly figures and appends live points to them.
import type { Figure, PlotElement } from "plotly.js-dist-min";

// Plotly is most of the dashboard's code (4.7 MB): loaded on its own, while the page's
// first requests are already on their way, instead of before any of the page runs.
let plotlyModule: Promise<typeof import("plotly.js-dist-min").default> | null = null;
export function loadPlotly(): Promise<typeof import("plotly.js-dist-min").default> {
  plotlyModule ??= import("plotly.js-dist-min").then((m) => m.default);
  return plotlyModule;
}

/** Resolves after the browser has painted what was drawn before the call. */
export function nextPaint(): Promise<void> {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

const CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

const TYPED: Record<string, { new (buffer: ArrayBuffer): ArrayLike<number> }> = {
  f8: Float64Array, f4: Float32Array, i1: Int8Array, u1: Uint8Array, i2: Int16Array,
  u2: Uint16Array, i4: Int32Array, u4: Uint32Array,
};

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Plotly.py writes numeric columns as base64 typed arrays ({dtype, bdata, shape});
 * plain arrays keep them extendable and readable by the page's own code. */
export function decode(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decode);
  if (!value || typeof value !== "object") return value;
  const obj = value as Record<string, unknown>;
  if (typeof obj["bdata"] === "string" && typeof obj["dtype"] === "string" && TYPED[obj["dtype"]]) {
    const flat = Array.from(new TYPED[obj["dtype"]]!(base64Bytes(obj["bdata"]).buffer));
    const shape = String(obj["shape"] ?? "").split(",").map((n) => parseInt(n, 10)).filter((n) => n > 0);
    if (shape.length === 2) {
      const [rows, cols] = shape as [number, number];
      return Array.from({ length: rows }, (_, r) => flat.slice(r * cols, (r + 1) * cols));
    }
    return flat;
  }
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj)) out[k] = decode(v);
  return out;
}

/** Draws (or updates in place) a figure; `data-painted` is set once the browser has
 * painted it, so the dashboard's timings count the paint, not only Plotly's work. */
export async function draw(el: HTMLElement, figure: Figure, onTrialClick?: (trialId: number) => void): Promise<void> {
  const Plotly = await loadPlotly();
  const plot = await Plotly.react(el, decode(figure.data) as unknown[], figure.layout, CONFIG);
  await nextPaint();
  el.dataset.painted = String(Date.now());
  if (onTrialClick && !el.dataset.clickBound) {
    el.dataset.clickBound = "1";
    plot.on("plotly_click", (e) => {
      const id = e.points[0]?.customdata;
      if (typeof id === "number") onTrialClick(id);
    });
  }
}

export async function extend(
  el: HTMLElement, trace: number, xs: number[], ys: number[], customdata?: number[],
): Promise<void> {
  if (!xs.length) return;
  const Plotly = await loadPlotly();
  const update = customdata ? { x: [xs], y: [ys], customdata: [customdata] } : { x: [xs], y: [ys] };
  await Plotly.extendTraces(el, update, [trace]);
  el.dataset.extended = String(Date.now());
}

/** Adds a trace to a drawn figure; resolves to its index. */
export async function addTrace(el: HTMLElement, trace: Record<string, unknown>): Promise<number> {
  const Plotly = await loadPlotly();
  await Plotly.addTraces(el, [trace]);
  return ((el as PlotElement).data?.length ?? 1) - 1;
}

export async function restyle(el: HTMLElement, trace: number, update: Record<string, unknown>): Promise<void> {
  const Plotly = await loadPlotly();
  await Plotly.restyle(el, update, [trace]);
}

/** The x values of a drawn trace (as drawn: typed arrays are decoded before drawing). */
export function traceXs(el: HTMLElement, trace: number): unknown[] {
  const data = (el as PlotElement).data?.[trace];
  const xs = data?.["x"];
  return Array.isArray(xs) ? xs : [];
}

export function purge(el: HTMLElement): void {
  // Nothing was drawn if Plotly has not been requested yet.
  void plotlyModule?.then((Plotly) => Plotly.purge(el));
}

export function currentMeta(el: HTMLElement): Record<string, unknown> {
  const layout = (el as PlotElement).layout;
  const meta = layout?.meta;
  return meta && typeof meta === "object" ? (meta as Record<string, unknown>) : {};
}

/** Runs `fn` at most once per `ms`; calls during a run or the wait coalesce into one. */
export function throttle(fn: () => Promise<void> | void, ms: number): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  let again = false;
  let last = 0;
  const fire = async () => {
    timer = null;
    if (running) {
      again = true;
      return;
    }
    running = true;
    last = Date.now();
    try {
      await fn();
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    if (timer) return;
    timer = setTimeout(fire, Math.max(0, ms - (Date.now() - last)));
  };
  return schedule;
}
