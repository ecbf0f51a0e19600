// The trials table: sort, state filter and pages all on the server (cursor paging of
// `GET /studies/{id}/trials`), one page of `PAGE_SIZE` rows at a time.
import { api, type StudyRead, type TrialRead } from "../../api/client";
import { clear, duration, fmt, h, link, stateBadge } from "../../dom";
import { navigate } from "../../main";
import { tagsCell } from "./notes";
import { constraintText, constraintsOf, objectivesOf, type ConstraintSpec, type MultiTrial, type ObjectiveSpec } from "./objectives";

export const PAGE_SIZE = 20;
const ORDERINGS: [string, string][] = [
  ["value", "value ↑"], ["-value", "value ↓"], ["number", "number ↑"], ["-number", "number ↓"],
  ["-started_at", "newest started"], ["-finished_at", "newest finished"],
];
const STATES = ["completed", "running", "stopped", "paused", "queued", "failed", "cancelled"];

export interface TrialsTable {
  readonly el: HTMLElement;
  /** Reloads the page shown (after a change). */
  load(): Promise<void>;
  /** Sorts best first in the study's direction, unless the sort was already chosen. */
  sortBestFirst(direction: string): void;
  /** The study is known: a column per objective and per constraint when it has them. */
  setStudy(study: StudyRead): void;
}

export function createTrialsTable(studyId: number): TrialsTable {
  const orderSel = h("select", { "aria-label": "order by", id: "order-by" }, ...ORDERINGS.map(([v, l]) => h("option", { value: v }, l)));
  const stateBoxes = STATES.map((s) => h("input", { type: "checkbox", value: s, "data-state": s }));
  const tagFilter = h("input", { type: "search", id: "tag-filter", placeholder: "tag", "aria-label": "only trials with this tag", size: 12 });
  const tbody = h("tbody");
  const pager = h("span", { class: "muted", id: "trials-page" });
  const prevBtn = h("button", { type: "button", id: "trials-prev" }, "‹ Prev");
  const nextBtn = h("button", { type: "button", id: "trials-next" }, "Next ›");
  // The cursor that opens each page seen so far: Prev goes back without a new cursor.
  const cursors: (string | null)[] = [null];
  let page = 0;
  let nextCursor: string | null = null;
  // Trials picked for /studies/{id}/compare (kept across pages and sorts): 2 to 4.
  const selected = new Map<number, number>(); // id -> number
  const compareBtn = h("button", { type: "button", id: "compare-trials", disabled: true }, "Compare (0)");
  const updateCompare = () => {
    compareBtn.textContent = `Compare (${selected.size})`;
    compareBtn.disabled = selected.size < 2 || selected.size > 4;
    compareBtn.title = compareBtn.disabled ? "Tick 2 to 4 trials to compare them" : [...selected.values()].map((n) => `#${n}`).join(", ");
  };
  compareBtn.addEventListener("click", () => navigate(`/studies/${studyId}/compare?trials=${[...selected.keys()].join(",")}`));

  // Objective and constraint columns, once the study is known (several objectives: one
  // value column each; constraints: the observed value, red with the excess when broken).
  let objectives: ObjectiveSpec[] = [];
  let constraints: ConstraintSpec[] = [];
  const thead = h("thead");
  const columns = (): string[] => [
    "#", "State",
    ...(objectives.length > 1 ? objectives.map((o) => `${o.metric} ${o.direction === "maximize" ? "↑" : "↓"}`) : ["Value"]),
    ...constraints.map((c) => `${c.metric} ${c.op} ${fmt(c.value)}`),
    ...(objectives.length > 1 || constraints.length ? ["Pareto"] : []),
    "Params", "Tags", "Worker", "Duration", "",
  ];
  const renderHead = () => clear(thead, h("tr", null, ...columns().map((c) => h("th", null, c))));
  renderHead();

  const el = h(
    "section",
    { class: "card", id: "trials-card" },
    h("div", { class: "row between" }, h("h2", null, "Trials"), h("div", { class: "row" }, compareBtn, "Sort ", orderSel)),
    h("div", { class: "row filters" }, "State: ", ...stateBoxes.map((b) => h("label", null, b, " ", b.value)), " Tag: ", tagFilter),
    h(
      "table",
      { class: "table", id: "trials" },
      thead,
      tbody,
    ),
    h("div", { class: "row" }, prevBtn, nextBtn, pager),
  );

  let loaded = false;
  async function load(): Promise<void> {
    loaded = true;
    const states = stateBoxes.filter((b) => b.checked).map((b) => b.value);
    try {
      const list = await api.listTrials(studyId, { order_by: orderSel.value, state: states, cursor: cursors[page], limit: PAGE_SIZE, tag: tagFilter.value.trim() });
      nextCursor = list.next_cursor;
      clear(tbody, list.items.map(row));
      if (!list.items.length) tbody.append(h("tr", null, h("td", { colspan: columns().length, class: "muted" }, "No trials.")));
      pager.textContent = `page ${page + 1}`;
      prevBtn.disabled = page === 0;
      nextBtn.disabled = !nextCursor;
    } catch (err) {
      clear(tbody, h("tr", null, h("td", { colspan: columns().length, class: "error" }, String((err as Error).message))));
    }
  }

  function resultCells(t: MultiTrial): HTMLTableCellElement[] {
    const cells: HTMLTableCellElement[] = [];
    if (objectives.length > 1) {
      objectives.forEach((o, i) => cells.push(h("td", { class: "num", "data-objective": o.metric }, fmt(t.values?.[i] ?? null))));
    } else {
      cells.push(h("td", { class: "num" }, fmt(t.value as number | null)));
    }
    constraints.forEach((c, i) => {
      const shown = constraintText(t.constraints?.[i]);
      cells.push(h("td", { class: shown.broken ? "num error" : "num", "data-constraint": c.metric, title: shown.broken ? `broke ${c.metric} ${c.op} ${c.value}` : "" }, shown.text));
    });
    if (objectives.length > 1 || constraints.length) {
      cells.push(h("td", { "data-pareto": t.is_pareto ? "1" : "0" }, t.is_pareto ? "★" : t.feasible === false ? "infeasible" : ""));
    }
    return cells;
  }

  function row(t: TrialRead): HTMLTableRowElement {
    const params = Object.entries(t.params).map(([k, v]) => `${k}=${typeof v === "number" ? fmt(v) : String(v)}`).join(", ");
    const multi = t as MultiTrial;
    return h(
      "tr",
      { "data-trial": t.id, class: multi.feasible === false ? "infeasible" : null, "data-pareto": multi.is_pareto ? "1" : null },
      h("td", { class: "nowrap" }, h("input", {
        type: "checkbox", class: "pick", "aria-label": `compare #${t.number}`, "data-pick": t.id, checked: selected.has(t.id),
        onchange: (e: Event) => {
          if ((e.target as HTMLInputElement).checked) selected.set(t.id, t.number);
          else selected.delete(t.id);
          updateCompare();
        },
      }), link(`/trials/${t.id}`, `#${t.number}`)),
      h("td", null, stateBadge(t.state)),
      ...resultCells(multi),
      h("td", { class: "params" }, params),
      tagsCell(t.tags, t.notes_excerpt),
      h("td", null, t.worker ?? "—"),
      h("td", null, duration(t.duration_s)),
      h("td", null, t.state === "running" || t.state === "queued"
        ? h("button", { type: "button", class: "small", onclick: async () => { await api.cancelTrial(t.id); void load(); } }, "Stop")
        : null),
    );
  }

  // Until someone picks a sort, the best trials come first: a maximize study's
  // highest values, a minimize study's lowest.
  let sortChosen = false;
  function sortBestFirst(direction: string): void {
    if (!sortChosen) orderSel.value = direction === "maximize" ? "-value" : "value";
  }

  const restart = () => { page = 0; cursors.length = 1; void load(); };
  orderSel.addEventListener("change", () => { sortChosen = true; });
  orderSel.addEventListener("change", restart);
  stateBoxes.forEach((b) => b.addEventListener("change", restart));
  tagFilter.addEventListener("change", restart);
  prevBtn.addEventListener("click", () => { if (page > 0) { page--; void load(); } });
  nextBtn.addEventListener("click", () => {
    if (!nextCursor) return;
    cursors[page + 1] = nextCursor;
    page++;
    void load();
  });

  function setStudy(study: StudyRead): void {
    const nextObjectives = objectivesOf(study);
    const nextConstraints = constraintsOf(study);
    if (JSON.stringify([nextObjectives, nextConstraints]) === JSON.stringify([objectives, constraints])) return;
    objectives = nextObjectives;
    constraints = nextConstraints;
    renderHead();
    if (loaded) void load(); // rows drawn with the old columns
  }

  return { el, load, sortBestFirst, setStudy };
}
