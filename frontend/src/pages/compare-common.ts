// What the two compare pages share: their data (one lean request each,
// `GET /studies/{id}/compare/trials` and `/compare/history`), the colours, and id lists.
import { request, type EventRead, type TrialRead } from "../api/client";

/** One colour per compared trial or study, in the order of the URL, on every part of a page. */
export const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];

export interface Objective {
  metric: string;
  direction: string;
}

export interface TrialCompare {
  study_id: number;
  study_name: string;
  objectives: Objective[];
  metric: string;
  metrics: string[];
  x_label: string;
  rung_levels: number[];
  trials: {
    trial: TrialRead;
    curve: { steps: number[]; values: (number | null)[]; total: number };
    events: EventRead[];
  }[];
}

export interface BestSteps {
  number: number[];
  seconds: (number | null)[];
  value: number[];
}

export interface StudyHistory {
  study_id: number;
  name: string;
  state: string;
  direction: string;
  metric: string;
  objectives: Objective[];
  started_at: string | null;
  n_trials: number;
  n_scored: number;
  thinned: boolean;
  points: { trial_id: number[]; number: number[]; value: number[]; seconds: (number | null)[] };
  best_by_number: BestSteps;
  best_by_time: BestSteps;
  best: { trial_id: number; number: number; value: number; params: Record<string, unknown> } | null;
}

export const compareApi = {
  trials: (studyId: number, ids: number[], metric?: string) => {
    const q = new URLSearchParams({ trials: ids.join(",") });
    if (metric) q.set("metric", metric);
    return request<TrialCompare>("GET", `/studies/${studyId}/compare/trials?${q}`);
  },
  history: (studyId: number, points = 2000) =>
    request<StudyHistory>("GET", `/studies/${studyId}/compare/history?points=${points}`),
};

/** "3,7,12" (or repeated values) -> [3, 7, 12]; null names what is wrong with it. */
export function parseIds(values: string[], low: number, high: number, what: string): { ids: number[]; problem: string | null } {
  const parts = values.flatMap((v) => v.split(",")).map((p) => p.trim()).filter(Boolean);
  const bad = parts.filter((p) => !/^\d+$/.test(p) || Number(p) <= 0);
  if (bad.length) return { ids: [], problem: `${bad.map((b) => JSON.stringify(b)).join(", ")} ${bad.length > 1 ? "are not ids" : "is not an id"} of ${what}.` };
  const ids = [...new Set(parts.map(Number))];
  if (ids.length < low || ids.length > high) {
    return { ids, problem: `Pick ${low} to ${high} ${what} to compare (the link names ${ids.length}).` };
  }
  return { ids, problem: null };
}

export function swatch(color: string): HTMLSpanElement {
  const el = document.createElement("span");
  el.className = "swatch";
  el.style.background = color;
  return el;
}

/** Plotly's look for the compare charts (the server's figures use plotly_white). */
export function baseLayout(title: string, x: string, y: string): Record<string, unknown> {
  const axis = (text: string) => ({ title: { text }, gridcolor: "#eef0f3", zerolinecolor: "#d1d5db" });
  return {
    title: { text: title, x: 0.01, font: { size: 15 } },
    paper_bgcolor: "#fff",
    plot_bgcolor: "#fff",
    margin: { l: 60, r: 20, t: 45, b: 50 },
    legend: { orientation: "h", y: -0.2 },
    xaxis: axis(x),
    yaxis: axis(y),
    hovermode: "closest",
    uirevision: "keep",
  };
}
