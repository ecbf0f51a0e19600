// The trials table: sort, state filter and pages all on the server (cursor paging of
// `GET /studies/{id}/trials`), one page of `PAGE_SIZE` rows at a time.
import { api, type TrialRead } from "../../api/client";
import { clear, duration, fmt, h, link, stateBadge } from "../../dom";

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
}

export function createTrialsTable(studyId: number): TrialsTable {
  const orderSel = h("select", { "aria-label": "order by", id: "order-by" }, ...ORDERINGS.map(([v, l]) => h("option", { value: v }, l)));
  const stateBoxes = STATES.map((s) => h("input", { type: "checkbox", value: s, "data-state": s }));
  const tbody = h("tbody");
  const pager = h("span", { class: "muted", id: "trials-page" });
  const prevBtn = h("button", { type: "button", id: "trials-prev" }, "‹ Prev");
  const nextBtn = h("button", { type: "button", id: "trials-next" }, "Next ›");
  // The cursor that opens each page seen so far: Prev goes back without a new cursor.
  const cursors: (string | null)[] = [null];
  let page = 0;
  let nextCursor: string | null = null;

  const el = h(
    "section",
    { class: "card", id: "trials-card" },
    h("div", { class: "row between" }, h("h2", null, "Trials"), h("div", { class: "row" }, "Sort ", orderSel)),
    h("div", { class: "row filters" }, "State: ", ...stateBoxes.map((b) => h("label", null, b, " ", b.value))),
    h(
      "table",
      { class: "table", id: "trials" },
      h("thead", null, h("tr", null, ...["#", "State", "Value", "Params", "Worker", "Duration", ""].map((c) => h("th", null, c)))),
      tbody,
    ),
    h("div", { class: "row" }, prevBtn, nextBtn, pager),
  );

  async function load(): Promise<void> {
    const states = stateBoxes.filter((b) => b.checked).map((b) => b.value);
    try {
      const list = await api.listTrials(studyId, { order_by: orderSel.value, state: states, cursor: cursors[page], limit: PAGE_SIZE });
      nextCursor = list.next_cursor;
      clear(tbody, list.items.map(row));
      if (!list.items.length) tbody.append(h("tr", null, h("td", { colspan: 7, class: "muted" }, "No trials.")));
      pager.textContent = `page ${page + 1}`;
      prevBtn.disabled = page === 0;
      nextBtn.disabled = !nextCursor;
    } catch (err) {
      clear(tbody, h("tr", null, h("td", { colspan: 7, class: "error" }, String((err as Error).message))));
    }
  }

  function row(t: TrialRead): HTMLTableRowElement {
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
        ? h("button", { type: "button", class: "small", onclick: async () => { await api.cancelTrial(t.id); void load(); } }, "Stop")
        : null),
    );
  }

  const restart = () => { page = 0; cursors.length = 1; void load(); };
  orderSel.addEventListener("change", restart);
  stateBoxes.forEach((b) => b.addEventListener("change", restart));
  prevBtn.addEventListener("click", () => { if (page > 0) { page--; void load(); } });
  nextBtn.addEventListener("click", () => {
    if (!nextCursor) return;
    cursors[page + 1] = nextCursor;
    page++;
    void load();
  });

  return { el, load };
}
