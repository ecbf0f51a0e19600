// The study's header: name, state and actions, the add-a-trial form, and the key figures.
import { ApiError, api, type StudyRead, type StudySummary } from "../../api/client";
import { clear, duration, fmt, h, link, stateBadge } from "../../dom";
import { navigate } from "../../main";
import { progress, strategyLabel } from "../studies";

export interface Header {
  /** The status card (name, actions, messages) and the key-figures row. */
  readonly card: HTMLElement;
  readonly figures: HTMLElement;
  /** Reloads the study; resolves to it, or null when it could not be read. */
  loadStudy(): Promise<StudyRead | null>;
  loadSummary(): Promise<void>;
}

export function createHeader(id: number, onStudy: (study: StudyRead) => void): Header {
  const head = h("div", { class: "study-head" });
  const message = h("p", { class: "error", role: "alert" });
  const figures = h("div", { class: "figures" });
  const card = h("section", { class: "card", id: "study-header" }, head, message);

  function showError(err: unknown, withField = false): void {
    message.textContent =
      err instanceof ApiError ? (withField ? `${err.field ?? ""} ${err.detail}` : err.detail) : String(err);
  }

  async function loadStudy(): Promise<StudyRead | null> {
    let study: StudyRead;
    try {
      study = await api.getStudy(id);
    } catch (err) {
      showError(err);
      return null;
    }
    render(study);
    onStudy(study);
    return study;
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
            showError(err);
          }
        },
      },
      label,
    );
  }

  function render(s: StudyRead): void {
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
            showError(err, true);
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
          // Population-based training: the population view (frontend/src/pages/population.ts).
          ["pbt", "pb2"].includes(String(s.strategy.name))
            ? h("a", { href: `/studies/${id}/population`, "data-link": true, class: "button", id: "population-link" }, "Population")
            : null,
          // Webhooks of this study (frontend/src/pages/webhooks.ts).
          h("a", { href: `/webhooks?study=${id}`, "data-link": true, class: "button", id: "notifications-link" }, "Notifications"),
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
    const item = (label: string, value: string, itemId: string) =>
      h("div", { class: "figure", id: itemId }, h("div", { class: "figure-value" }, value), h("div", { class: "figure-label" }, label));
    const counts = Object.entries(sum.trial_counts).map(([k, v]) => `${v} ${k}`).join(" · ") || "none";
    clear(
      figures,
      item("best value", fmt(sum.best_value), "fig-best"),
      item("trials", String(sum.n_trials), "fig-trials"),
      item("by state", counts, "fig-states"),
      item("compute used", duration(sum.compute_used_s), "fig-used"),
      item("saved by early stopping", `${duration(sum.compute_saved_s)} (${fmt(sum.steps_saved, 3)} steps)`, "fig-saved"),
    );
  }

  async function loadSummary(): Promise<void> {
    try {
      renderSummary(await api.summary(id));
    } catch {
      /* the next change retries */
    }
  }

  return { card, figures, loadStudy, loadSummary };
}
