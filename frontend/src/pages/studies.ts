import { api, request, type Schemas, type StudyRead } from "../api/client";
import { subscribe } from "../api/live";
import { throttle } from "../charts";
import { clear, fmt, h, link, stateBadge } from "../dom";
import { navigate } from "../main";
import { projectSelect } from "./projects";

const FINISHED = ["completed", "stopped", "failed", "cancelled"];

export function progress(study: StudyRead): string {
  const counts = study.trial_counts;
  const finished = FINISHED.reduce((n, s) => n + (counts[s] ?? 0), 0);
  const running = counts["running"] ?? 0;
  return `${finished} / ${study.limits.max_trials} finished · ${running} running`;
}

export function strategyLabel(study: StudyRead): string {
  const name = String(study.strategy["name"] ?? "random");
  const rule = study.early_stopping ? ` + ${String(study.early_stopping["rule"])}` : "";
  return name + rule;
}

export function studiesPage(root: HTMLElement, params: URLSearchParams = new URLSearchParams()): () => void {
  // The project filter (pages/projects.ts), kept in the URL: /?project=name.
  let project = params.get("project") ?? "";
  const projects = projectSelect(project, (value) => {
    project = value;
    history.replaceState(null, "", value ? `/?project=${encodeURIComponent(value)}` : "/");
    void load();
  });
  const body = h("tbody");
  const total = h("span", { class: "muted" });
  const error = h("p", { class: "error", role: "alert" });
  // Studies picked for /compare?studies=... (2 to 6), kept across the list's refreshes.
  const picked = new Map<number, string>(); // id -> name
  const compareBtn = h("button", { type: "button", id: "compare-studies", disabled: true }, "Compare (0)");
  const updateCompare = () => {
    compareBtn.textContent = `Compare (${picked.size})`;
    compareBtn.disabled = picked.size < 2 || picked.size > 6;
    compareBtn.title = compareBtn.disabled ? "Tick 2 to 6 studies to compare them" : [...picked.values()].join(", ");
  };
  compareBtn.addEventListener("click", () => navigate(`/compare?studies=${[...picked.keys()].join(",")}`));
  const pick = (s: StudyRead) => h("input", {
    type: "checkbox", class: "pick", "aria-label": `compare ${s.name}`, "data-pick": s.id, checked: picked.has(s.id),
    onchange: (e: Event) => {
      if ((e.target as HTMLInputElement).checked) picked.set(s.id, s.name);
      else picked.delete(s.id);
      updateCompare();
    },
  });
  root.append(
    h(
      "section",
      { class: "card" },
      h("div", { class: "row between" }, h("h1", null, "Studies ", total), projects, h("div", { class: "row" }, compareBtn, link("/studies/new", h("button", null, "New study")))),
      error,
      h(
        "table",
        { class: "table", id: "studies" },
        h("thead", null, h("tr", null, ...["Name", "State", "Strategy", "Best value", "Progress", "Created"].map((c) => h("th", null, c)))),
        body,
      ),
    ),
  );

  async function load(): Promise<void> {
    try {
      const list = project
        ? await request<Schemas["StudyList"]>("GET", `/studies?limit=200&project=${encodeURIComponent(project)}`)
        : await api.listStudies();
      error.textContent = "";
      total.textContent = `(${list.total})`;
      clear(
        body,
        list.items.map((s) =>
          h(
            "tr",
            { "data-study": s.id },
            h("td", null, pick(s), " ", link(`/studies/${s.id}`, s.name)),
            h("td", null, stateBadge(s.state)),
            h("td", null, strategyLabel(s)),
            h("td", { class: "num" }, fmt(s.best_value)),
            h("td", null, progress(s)),
            h("td", { class: "muted" }, new Date(s.created_at).toLocaleString()),
          ),
        ),
      );
      if (!list.items.length) body.append(h("tr", null, h("td", { colspan: 6, class: "muted" }, "No studies yet.")));
    } catch (err) {
      error.textContent = String((err as Error).message);
    }
  }
  const refresh = throttle(load, 500);
  void load();
  const stream = subscribe("/events", (c) => {
    if (c.kind === "study" || c.kind === "trial" || c.kind === "resync") refresh();
  }, (reconnected) => reconnected && refresh());
  return () => stream.close();
}
