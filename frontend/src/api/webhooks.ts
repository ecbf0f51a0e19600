// The webhooks API (app/webhooks/endpoints.py): notifications that a study finished,
// found a new best, reached its target, or that a trial failed or a worker was lost.
// Written by hand after app/webhooks/schemas.py.
import { request } from "./client";

export const WEBHOOK_EVENTS = [
  "study.finished",
  "study.new_best",
  "study.target_reached",
  "trial.failed",
  "worker.lost",
] as const;

export type WebhookFormat = "json" | "slack";
export type DeliveryState = "pending" | "delivered" | "failed";

export interface LastDelivery {
  state: DeliveryState;
  status: number | null;
  at: string | null;
}

export interface WebhookRead {
  id: number;
  url: string;
  study_id: number | null;
  project: string;
  events: string[];
  format: WebhookFormat;
  active: boolean;
  description: string;
  created_at: string;
  secret_hint: string;
  last_delivery: LastDelivery | null;
}

/** The answer to a create: the only one that carries the secret. */
export interface WebhookCreated extends WebhookRead {
  secret: string;
}

export interface WebhookCreate {
  url: string;
  study_id?: number | null;
  project?: string | null;
  events?: string[];
  format?: WebhookFormat;
  active?: boolean;
  description?: string;
  secret?: string | null;
}

export type WebhookUpdate = Partial<WebhookCreate>;

export interface DeliveryRead {
  id: number;
  webhook_id: number;
  event: string;
  study_id: number | null;
  trial_id: number | null;
  state: DeliveryState;
  attempts: number;
  next_attempt_at: string | null;
  status: number | null;
  error: string;
  duration_ms: number | null;
  created_at: string;
  delivered_at: string | null;
  payload: unknown;
}

export const webhooksApi = {
  list: (studyId: number | null = null) =>
    request<{ items: WebhookRead[] }>("GET", `/webhooks${studyId === null ? "" : `?study_id=${studyId}`}`),
  get: (id: number) => request<WebhookRead>("GET", `/webhooks/${id}`),
  create: (body: WebhookCreate) => request<WebhookCreated>("POST", "/webhooks", body),
  /** The answer carries `secret` when the body set or renewed it (`secret: null`). */
  update: (id: number, body: WebhookUpdate) =>
    request<WebhookRead & { secret?: string }>("PATCH", `/webhooks/${id}`, body),
  remove: (id: number) => request<void>("DELETE", `/webhooks/${id}`),
  test: (id: number) => request<DeliveryRead>("POST", `/webhooks/${id}/test`),
  deliveries: (id: number, limit = 50) =>
    request<{ items: DeliveryRead[] }>("GET", `/webhooks/${id}/deliveries?limit=${limit}`),
  redeliver: (id: number, deliveryId: number) =>
    request<DeliveryRead>("POST", `/webhooks/${id}/deliveries/${deliveryId}/redeliver`),
};
