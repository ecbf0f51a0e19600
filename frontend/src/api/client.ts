// The typed API client. Every request goes through `request`, the one place that adds
// the Bearer token (kept in localStorage) when the server asks for one.
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type StudyRead = Schemas["StudyRead"];
export type StudyCreate = Schemas["StudyCreate"];
export type TrialRead = Schemas["TrialRead"];
export type TrialDetail = Schemas["TrialDetail"];
export type TrialList = Schemas["TrialList"];
export type EventRead = Schemas["EventRead"];
export type LogRead = Schemas["LogRead"];
export type MetricPointList = Schemas["MetricPointList"];
export type StudySummary = Schemas["StudySummary"];
export type { paths };

export const API = "/api/v1";
const TOKEN_KEY = "tunelab.token";

export function getToken(): string | null {
  return localStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

export function authHeaders(): Record<string, string> {
  const token = getToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

export interface FieldError {
  field: string;
  detail: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly field: string | null,
    readonly errors: FieldError[],
  ) {
    super(detail);
  }
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let payload: { detail?: unknown; field?: string | null; errors?: FieldError[] } = {};
    try {
      payload = await response.json();
    } catch {
      /* not JSON */
    }
    const detail = typeof payload.detail === "string" ? payload.detail : response.statusText;
    const field = payload.field ?? null;
    const errors = payload.errors ?? (field ? [{ field, detail }] : []);
    if (response.status === 401) window.dispatchEvent(new CustomEvent("tunelab:unauthorized"));
    throw new ApiError(response.status, detail, field, errors);
  }
  if (response.status === 204) return undefined as T;
  return (await response.json()) as T;
}

function query(params: Record<string, string | number | string[] | null | undefined>): string {
  const q = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => q.append(key, v));
    else q.set(key, String(value));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

export const api = {
  listStudies: (limit = 200) => request<Schemas["StudyList"]>("GET", `/studies${query({ limit })}`),
  getStudy: (id: number) => request<StudyRead>("GET", `/studies/${id}`),
  createStudy: (body: unknown) => request<StudyRead>("POST", "/studies", body),
  updateStudy: (id: number, body: Schemas["StudyUpdate"]) => request<StudyRead>("PATCH", `/studies/${id}`, body),
  summary: (id: number) => request<StudySummary>("GET", `/studies/${id}/summary`),
  listTrials: (id: number, p: { order_by?: string; state?: string[]; cursor?: string | null; limit?: number; tag?: string }) =>
    request<TrialList>("GET", `/studies/${id}/trials${query({ ...p })}`),
  addTrial: (id: number, body: Schemas["TrialCreate"]) => request<TrialRead>("POST", `/studies/${id}/trials`, body),
  getTrial: (id: number) => request<TrialDetail>("GET", `/trials/${id}`),
  updateTrial: (id: number, body: Schemas["TrialUpdate"]) => request<TrialDetail>("PATCH", `/trials/${id}`, body),
  cancelTrial: (id: number) => request<TrialRead>("POST", `/trials/${id}/cancel`),
  retryTrial: (id: number) => request<TrialRead>("POST", `/trials/${id}/retry`),
  trialEvents: (id: number, since = 0) => request<Schemas["EventList"]>("GET", `/trials/${id}/events${query({ since })}`),
  trialLogs: (id: number, offset = 0) => request<LogRead>("GET", `/trials/${id}/logs${query({ offset })}`),
  metrics: (id: number, since: number, name?: string) =>
    request<MetricPointList>("GET", `/trials/${id}/metrics${query({ since, name })}`),
  studyPlot: (id: number, kind: string, opts: Record<string, string> = {}) =>
    request<import("plotly.js-dist-min").Figure>("GET", `/studies/${id}/plots/${kind}${query(opts)}`),
  trialPlot: (id: number) => request<import("plotly.js-dist-min").Figure>("GET", `/trials/${id}/plots/curves`),
  csvUrl: (id: number) => `${API}/studies/${id}/trials.csv`,
};
