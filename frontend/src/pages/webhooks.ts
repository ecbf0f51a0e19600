// The notifications page (/webhooks, /webhooks?study=ID): the caller's webhooks, a form
// to add one (its secret is shown once), and each webhook's delivery log with the
// payloads sent. Refreshes itself every few seconds while it is open.
// Everything a user or a receiver wrote (URL, description, error, payload) goes in as
// text (`h()` makes text nodes), never as markup.
import { ApiError, api } from "../api/client";
import {
  type DeliveryRead,
  type WebhookFormat,
  type WebhookRead,
  WEBHOOK_EVENTS,
  webhooksApi,
} from "../api/webhooks";
import { clear, h, link } from "../dom";
import type { Dispose } from "../main";
import { projectsApi } from "./projects";

const REFRESH_MS = 3000;
const DELIVERY_LIMIT = 50;

function message(err: unknown): string {
  return err instanceof ApiError ? `${err.detail}${err.field ? ` (${err.field})` : ""}` : String(err);
}

function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? iso : at.toLocaleString();
}

/** "in 12 s" / "in 3 min" for a retry still to come; the time itself otherwise. */
function nextAttempt(d: DeliveryRead): string {
  if (d.state !== "pending" || !d.next_attempt_at) return "—";
  const seconds = (new Date(d.next_attempt_at).getTime() - Date.now()) / 1000;
  if (!Number.isFinite(seconds)) return d.next_attempt_at;
  if (seconds <= 1) return "now";
  return seconds < 120 ? `in ${Math.round(seconds)} s` : `in ${Math.round(seconds / 60)} min`;
}

function deliveryBadge(state: string): HTMLSpanElement {
  return h("span", { class: `badge delivery-${state.replace(/[^a-z]/g, "")}` }, state);
}

function payloadText(payload: unknown): string {
  try {
    return JSON.stringify(payload, null, 2) ?? "null";
  } catch {
    return String(payload);
  }
}

export function webhooksPage(root: HTMLElement, params: URLSearchParams): Dispose {
  const studyParam = Number(params.get("study"));
  const studyFilter = Number.isInteger(studyParam) && studyParam > 0 ? studyParam : null;

  const error = h("p", { class: "error", role: "alert", id: "webhooks-error" });
  const body = h("tbody");
  const secretBox = h("div", { id: "webhook-secret-box" });
  const log = h("section", { class: "card", id: "deliveries", hidden: true });
  let webhooks: WebhookRead[] = [];
  let selected: number | null = null;
  const expanded = new Set<number>();
  let deliveries: DeliveryRead[] = [];
  let disposed = false;
  let loading = false;
  let again = false;
  let loadFailed = false;
  let listKey = "";
  let logKey = "";

  root.append(
    h(
      "section",
      { class: "card" },
      h("h1", null, studyFilter === null ? "Notifications" : `Notifications for study ${studyFilter}`),
      h(
        "p",
        { class: "muted" },
        "Webhooks POST a signed JSON (or Slack) message to a URL when a study finishes, finds a new best, ",
        "reaches its target, or when a trial fails or a worker is lost. ",
        studyFilter === null
          ? null
          : h(
              "span",
              null,
              "Shown: this study's own webhooks; those of every study of its project are under ",
              link("/webhooks", "all webhooks"),
              ". ",
              link(`/studies/${studyFilter}`, `Back to study ${studyFilter}`),
            ),
      ),
      error,
      h(
        "table",
        { class: "table", id: "webhooks" },
        h(
          "thead",
          null,
          h("tr", null, ...["URL", "Scope", "Events", "Format", "Active", "Last delivery", ""].map((c) => h("th", null, c))),
        ),
        body,
      ),
      secretBox,
      createForm(),
    ),
    log,
  );

  // Listing -------------------------------------------------------------------------

  function lastDelivery(w: WebhookRead): HTMLElement {
    const last = w.last_delivery;
    if (!last) return h("span", { class: "muted" }, "none yet");
    return h(
      "span",
      null,
      deliveryBadge(last.state),
      last.status === null ? "" : ` ${last.status}`,
      h("span", { class: "muted" }, ` ${when(last.at)}`),
    );
  }

  function renderList(): void {
    listKey = JSON.stringify([selected, webhooks]);
    if (webhooks.length === 0) {
      clear(body, h("tr", null, h("td", { colspan: 7, class: "muted" }, "No webhooks yet: add one below.")));
      return;
    }
    clear(
      body,
      webhooks.map((w) =>
        h(
          "tr",
          { "data-webhook": w.id, class: w.id === selected ? "selected" : null },
          h(
            "td",
            { class: "webhook-url" },
            h("code", null, w.url),
            w.description ? h("div", { class: "muted webhook-description" }, w.description) : null,
          ),
          h(
            "td",
            { class: "webhook-scope" },
            w.study_id === null
              ? `all studies of ${w.project}`
              : link(`/studies/${w.study_id}`, `study ${w.study_id}`),
          ),
          h("td", { class: "webhook-events" }, w.events.join(", ")),
          h("td", null, w.format),
          h("td", { class: "webhook-active" }, w.active ? "yes" : h("span", { class: "muted" }, "no")),
          h("td", { class: "webhook-last" }, lastDelivery(w)),
          h(
            "td",
            null,
            h(
              "div",
              { class: "row actions" },
              h("button", { type: "button", class: "webhook-test", onclick: () => void sendTest(w.id) }, "Send test"),
              h("button", { type: "button", class: "webhook-log", onclick: () => void select(w.id) }, "Deliveries"),
              h(
                "button",
                { type: "button", class: "webhook-toggle", onclick: () => void setActive(w.id, !w.active) },
                w.active ? "Deactivate" : "Activate",
              ),
              h(
                "button",
                {
                  type: "button",
                  class: "webhook-rotate",
                  // Two clicks: the first asks, the second (within 5 s) renews the secret.
                  onclick: (e: Event) => void rotate(w, e.currentTarget as HTMLButtonElement),
                },
                "Rotate secret",
              ),
              h("button", { type: "button", class: "danger webhook-delete", onclick: () => void remove(w) }, "Delete"),
            ),
          ),
        ),
      ),
    );
  }

  async function loadList(): Promise<void> {
    const list = await webhooksApi.list(studyFilter);
    if (disposed) return;
    webhooks = list.items;
    if (selected !== null && !webhooks.some((w) => w.id === selected)) selected = null;
    if (selected === null) selected = webhooks[0]?.id ?? null;
    // Unchanged data is not drawn again: a click or a text selection survives a refresh.
    const key = JSON.stringify([selected, webhooks]);
    if (key !== listKey) renderList();
  }

  /** Reloads the list and the open log; a call made while one runs makes it go again. */
  async function load(): Promise<void> {
    if (disposed) return;
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      do {
        again = false;
        await loadList();
        if (disposed) return;
        await loadDeliveries();
        if (loadFailed) error.textContent = "";
        loadFailed = false;
      } while (again && !disposed);
    } catch (err) {
      if (!disposed) error.textContent = message(err);
      loadFailed = true;
    } finally {
      loading = false;
    }
  }

  /** Runs an action and shows its refusal, then reloads. */
  async function act(action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      error.textContent = "";
    } catch (err) {
      error.textContent = message(err);
    }
    await load();
  }

  function select(id: number): Promise<void> {
    selected = id;
    renderList();
    return load();
  }

  /** A send is usually answered within a moment: look again then, not at the next tick. */
  let soonTimer: number | undefined;
  function soon(): void {
    window.clearTimeout(soonTimer);
    if (disposed) return; // an answer that came after the page was left
    soonTimer = window.setTimeout(() => void load(), 700);
  }

  function sendTest(id: number): Promise<void> {
    selected = id;
    return act(() => webhooksApi.test(id)).then(soon);
  }

  function setActive(id: number, active: boolean): Promise<void> {
    return act(() => webhooksApi.update(id, { active }));
  }

  /** A new signing secret, shown once; receivers need it before the next delivery. */
  async function rotate(w: WebhookRead, button: HTMLButtonElement): Promise<void> {
    if (!button.classList.contains("confirming")) {
      button.classList.add("confirming");
      button.textContent = "Confirm: new secret";
      button.title = `The receiver of ${w.url} must get the new secret`;
      window.setTimeout(() => {
        button.classList.remove("confirming");
        button.textContent = "Rotate secret";
      }, 5000);
      return;
    }
    await act(async () => {
      const made = await webhooksApi.update(w.id, { secret: null });
      if (made.secret) showSecret(w.id, made.secret, "has a new");
    });
  }

  async function remove(w: WebhookRead): Promise<void> {
    if (!confirm(`Delete the webhook to ${w.url}? Its delivery log goes with it.`)) return;
    if (selected === w.id) selected = null;
    await act(() => webhooksApi.remove(w.id));
  }

  // Delivery log ----------------------------------------------------------------------

  function deliveryRows(d: DeliveryRead): HTMLTableRowElement[] {
    const open = expanded.has(d.id);
    const toggle = () => {
      if (expanded.has(d.id)) expanded.delete(d.id);
      else expanded.add(d.id);
      renderLog();
    };
    const row = h(
      "tr",
      { "data-delivery": d.id, "data-state": d.state, class: `delivery-row${open ? " open" : ""}`, onclick: toggle },
      h("td", { class: "muted" }, when(d.created_at)),
      h("td", null, d.event),
      h("td", { class: "delivery-state" }, deliveryBadge(d.state)),
      h("td", { class: "num delivery-status" }, d.status === null ? "—" : String(d.status)),
      h("td", { class: "num" }, d.attempts),
      h("td", { class: "muted" }, nextAttempt(d)),
      h("td", { class: "error delivery-error", title: d.error || null }, d.error),
      h("td", { class: "num" }, d.duration_ms === null ? "—" : `${Math.round(d.duration_ms)} ms`),
      h(
        "td",
        null,
        h(
          "button",
          {
            type: "button",
            class: "delivery-redeliver",
            onclick: (e: Event) => {
              e.stopPropagation();
              void act(() => webhooksApi.redeliver(d.webhook_id, d.id)).then(soon);
            },
          },
          "Redeliver",
        ),
      ),
    );
    if (!open) return [row];
    const detail = h(
      "tr",
      { class: "delivery-payload", "data-payload": d.id },
      h(
        "td",
        { colspan: 9 },
        h(
          "div",
          { class: "muted" },
          `delivery ${d.id}`,
          d.study_id === null ? "" : ` · study ${d.study_id}`,
          d.trial_id === null ? "" : ` · trial ${d.trial_id}`,
          d.delivered_at ? ` · delivered ${when(d.delivered_at)}` : "",
        ),
        d.error ? h("pre", { class: "log delivery-error-full" }, d.error) : null,
        h("pre", { class: "log payload" }, payloadText(d.payload)),
      ),
    );
    return [row, detail];
  }

  async function loadDeliveries(): Promise<void> {
    const webhook = webhooks.find((w) => w.id === selected);
    if (!webhook) {
      deliveries = [];
      renderLog();
      return;
    }
    const list = await webhooksApi.deliveries(webhook.id, DELIVERY_LIMIT);
    if (disposed || selected !== webhook.id) return;
    deliveries = list.items;
    if (logKeyOf() !== logKey) renderLog();
  }

  /** What the log shows; pending deliveries' "in N s" changes with the clock. */
  function logKeyOf(): string {
    const ticking = deliveries.some((d) => d.state === "pending");
    return JSON.stringify([selected, [...expanded], deliveries, ticking ? Math.floor(Date.now() / 1000) : 0]);
  }

  function renderLog(): void {
    logKey = logKeyOf();
    const webhook = webhooks.find((w) => w.id === selected);
    if (!webhook) {
      log.hidden = true;
      clear(log);
      return;
    }
    const mine = deliveries.filter((d) => d.webhook_id === webhook.id);
    log.hidden = false;
    clear(
      log,
      h("h2", null, `Deliveries of webhook ${webhook.id}`),
      h("p", { class: "muted" }, h("code", null, webhook.url), " · newest first; click a row for the payload sent."),
      mine.length === 0
        ? h("p", { class: "muted", id: "no-deliveries" }, "Nothing sent yet. “Send test” sends a ping.")
        : h(
            "table",
            { class: "table", id: "delivery-log", "data-webhook": webhook.id },
            h(
              "thead",
              null,
              h(
                "tr",
                null,
                ...["Time", "Event", "State", "HTTP", "Attempts", "Next attempt", "Error", "Duration", ""].map((c) =>
                  h("th", null, c),
                ),
              ),
            ),
            h("tbody", null, mine.flatMap(deliveryRows)),
          ),
    );
  }

  // Create form -------------------------------------------------------------------------

  function createForm(): HTMLElement {
    const url = h("input", {
      name: "url",
      type: "url",
      placeholder: "https://example.com/hooks/tunelab",
      required: true,
      "aria-label": "Webhook URL",
      class: "wide",
    });
    const scope = h(
      "select",
      { name: "scope", "aria-label": "Scope", onchange: () => showScope() },
      h("option", { value: "study" }, "one study"),
      h("option", { value: "project" }, "every study of a project"),
    );
    const study = h("input", {
      name: "study",
      type: "number",
      min: 1,
      placeholder: "study id",
      "aria-label": "Study id",
      value: studyFilter ?? "",
    });
    const project = h("select", { name: "project", "aria-label": "Project" }, h("option", { value: "" }, "default project"));
    // With ?study=ID, "every study of a project" starts at that study's project.
    Promise.all([projectsApi.list(), studyFilter === null ? null : api.getStudy(studyFilter).catch(() => null)]).then(
      ([list, own]) => {
        for (const p of list.items) if (p.name !== "default") project.append(h("option", { value: p.name }, p.name));
        // project_id: StudyRead's (newer than src/api/schema.d.ts).
        const projectId = (own as { project_id?: number } | null)?.project_id;
        const mine = list.items.find((p) => p.id === projectId);
        if (mine && mine.name !== "default") project.value = mine.name;
      },
      () => undefined,
    );
    if (studyFilter === null) scope.value = "project";
    const events = WEBHOOK_EVENTS.map((name) =>
      h("input", { type: "checkbox", name: "event", value: name, checked: true, "aria-label": name }),
    );
    const format = h(
      "select",
      { name: "format", "aria-label": "Format" },
      h("option", { value: "json" }, "JSON"),
      h("option", { value: "slack" }, "Slack"),
    );
    const description = h("input", { name: "description", placeholder: "description", "aria-label": "Description" });
    const studyField = h("label", { class: "field-inline" }, "Study ", study);
    const projectField = h("label", { class: "field-inline" }, "Project ", project);

    function showScope(): void {
      studyField.hidden = scope.value !== "study";
      projectField.hidden = scope.value !== "project";
    }
    showScope();

    async function submit(e: Event): Promise<void> {
      e.preventDefault();
      const chosen = events.filter((box) => box.checked).map((box) => box.value);
      if (chosen.length === 0) {
        error.textContent = "Choose at least one event.";
        return;
      }
      const studyId = scope.value === "study" ? Number(study.value) : null;
      if (scope.value === "study" && !(Number.isInteger(studyId) && (studyId ?? 0) > 0)) {
        error.textContent = "Give the study's id (or choose every study of a project).";
        return;
      }
      try {
        const made = await webhooksApi.create({
          url: url.value.trim(),
          study_id: studyId,
          project: scope.value === "project" ? project.value || null : null,
          events: chosen,
          format: format.value as WebhookFormat,
          description: description.value.trim(),
        });
        url.value = description.value = "";
        error.textContent = "";
        showSecret(made.id, made.secret);
        selected = made.id;
      } catch (err) {
        error.textContent = message(err);
        return;
      }
      await load();
    }

    return h(
      "form",
      { id: "webhook-create", class: "webhook-form", onsubmit: (e: Event) => void submit(e) },
      h("h2", null, "Add a webhook"),
      h("div", { class: "row wrap" }, h("label", { class: "field-inline" }, "URL ", url)),
      h("div", { class: "row wrap" }, h("label", { class: "field-inline" }, "Scope ", scope), studyField, projectField),
      h(
        "div",
        { class: "row wrap webhook-events-choice" },
        "Events:",
        ...events.map((box) => h("label", { class: "check" }, box, ` ${box.value}`)),
      ),
      h(
        "div",
        { class: "row wrap" },
        h("label", { class: "field-inline" }, "Format ", format),
        description,
        h("button", { type: "submit" }, "Create webhook"),
      ),
    );
  }

  function showSecret(id: number, secret: string, what = "created. Its"): void {
    const code = h("code", { id: "webhook-secret" }, secret);
    const copied = h("span", { class: "muted" });
    clear(
      secretBox,
      h(
        "div",
        { class: "secret-once", role: "status" },
        h("strong", null, `Webhook ${id} ${what} signing secret: `),
        code,
        " ",
        h(
          "button",
          {
            type: "button",
            onclick: () => {
              const selectText = () => {
                const range = document.createRange();
                range.selectNodeContents(code);
                const sel = window.getSelection();
                sel?.removeAllRanges();
                sel?.addRange(range);
                copied.textContent = " selected: press Ctrl+C";
              };
              if (navigator.clipboard) {
                navigator.clipboard.writeText(secret).then(() => (copied.textContent = " copied"), selectText);
              } else {
                selectText();
              }
            },
          },
          "Copy",
        ),
        copied,
        h(
          "p",
          { class: "muted" },
          "Copy it now: it is shown only this once (the list shows its last 4 characters). ",
          "Receivers check the Tunelab-Signature header with it, e.g. with tunelab.webhooks.verify.",
        ),
        h("button", { type: "button", onclick: () => clear(secretBox) }, "Done"),
      ),
    );
  }

  void load();
  const timer = window.setInterval(() => void load(), REFRESH_MS);
  return () => {
    disposed = true;
    window.clearInterval(timer);
    window.clearTimeout(soonTimer);
  };
}
