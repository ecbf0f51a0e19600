// The "take it to world scale" panel of the trial page: POST /trials/{id}/scale and the
// arithmetic the server shows for every rescaled parameter.
import { ApiError, request } from "../api/client";
import { clear, h } from "../dom";

interface ScaleStep {
  what: string;
  formula: string;
  value: number | null;
}

interface ScaleChange {
  param: string;
  role: string;
  before: unknown;
  after: unknown;
}

interface ScaleResult {
  rule: string;
  world_factor: number;
  params: Record<string, unknown>;
  changes: ScaleChange[];
  steps: ScaleStep[];
  notes: string[];
}

export function scalePanel(trialId: number): HTMLElement {
  const number = (name: string, value: number, label: string) =>
    h("label", null, label, " ", h("input", { type: "number", min: 1, name, value, style: "width: 5em" }));
  const form = h(
    "form",
    { class: "row", id: "scale-form" },
    number("from_nodes", 2, "from nodes"),
    number("from_gpus", 8, "× GPUs"),
    number("to_nodes", 4, "to nodes"),
    number("to_gpus", 8, "× GPUs"),
    h("label", null, "rule ",
      h("select", { name: "rule" }, ...["linear", "sqrt", "none"].map((r) => h("option", { value: r }, r)))),
    h("button", { type: "submit" }, "Scale"),
  );
  const output = h("div", { id: "scale-result" });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const int = (key: string) => Number(data.get(key));
    try {
      const result = await request<ScaleResult>("POST", `/trials/${trialId}/scale`, {
        from: { nodes: int("from_nodes"), gpus_per_node: int("from_gpus") },
        to: { nodes: int("to_nodes"), gpus_per_node: int("to_gpus") },
        rule: String(data.get("rule")),
      });
      clear(
        output,
        h("table", { class: "table" },
          h("thead", null, h("tr", null, ...["Parameter", "Role", "Before", "After"].map((c) => h("th", null, c)))),
          h("tbody", null, ...result.changes.map((c) =>
            h("tr", null, h("td", null, c.param), h("td", null, c.role),
              h("td", { class: "num" }, String(c.before)), h("td", { class: "num" }, String(c.after)))))),
        h("ol", null, ...result.steps.map((s) => h("li", null, `${s.what}: ${s.formula}`))),
        ...result.notes.map((note) => h("p", { class: "muted" }, note)),
      );
    } catch (error) {
      const detail = error instanceof ApiError ? `${error.field ?? ""} ${error.detail}`.trim() : String(error);
      clear(output, h("p", { class: "error", role: "alert" }, detail));
    }
  });

  return h("section", { class: "card" }, h("h2", null, "Scale to a new world size"), form, output);
}
