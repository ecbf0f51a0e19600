import { parse as parseYaml, stringify as toYaml } from "yaml";
import { ApiError, api, type FieldError, type StudyRead } from "../api/client";
import { clear, h } from "../dom";
import { navigate } from "../main";
import { extract } from "../regex";
import { TEMPLATES } from "../templates";

type Body = Record<string, unknown>;
type Obj = Record<string, unknown>;

const STRATEGIES = [
  "random", "grid", "sobol", "tpe", "gp", "nsga2", "motpe", "asha", "hyperband", "bohb", "pbt", "pb2",
];
const PARAM_TYPES = ["float", "int", "categorical", "fixed"];
const SCALES = ["linear", "log", "reverse_log"];
const LIMIT_FIELDS: [string, string][] = [
  ["max_trials", "max trials"],
  ["max_parallel_trials", "max parallel trials"],
  ["max_runtime_s", "max runtime (s)"],
  ["target_value", "target value"],
  ["max_trials_without_improvement", "max trials without improvement"],
  ["max_budget", "max budget (fidelity units)"],
  ["heartbeat_timeout_s", "heartbeat timeout (s)"],
  ["max_retries", "max retries"],
];
const EMPTY: Body = {
  name: "",
  objective: { metric: "loss", direction: "minimize", aggregate: "last" },
  space: { lr: { type: "float", low: 1e-5, high: 0.1, scale: "log" } },
  strategy: { name: "random" },
  limits: { max_trials: 20, max_parallel_trials: 1 },
};

const asObj = (v: unknown): Obj => (v && typeof v === "object" && !Array.isArray(v) ? (v as Obj) : {});
const str = (v: unknown): string => (v === undefined || v === null ? "" : String(v));

function num(input: HTMLInputElement): number | undefined {
  if (input.value.trim() === "") return undefined;
  const n = Number(input.value);
  return Number.isNaN(n) ? (input.value as unknown as number) : n;
}

function parseScalar(text: string): string | number | boolean {
  const t = text.trim();
  if (t === "true" || t === "false") return t === "true";
  if (t !== "" && Number.isFinite(Number(t))) return Number(t);
  return t;
}

/** `optimizer=sgd,adam; kernel=poly` as a parameter's condition (every parent must hold). */
export function parseCondition(text: string): Obj | undefined {
  const condition: Obj = {};
  for (const clause of text.split(";")) {
    if (!clause.trim()) continue;
    const at = clause.indexOf("=");
    const parent = (at < 0 ? clause : clause.slice(0, at)).trim();
    const values = at < 0 ? [] : clause.slice(at + 1).split(",").filter((v) => v.trim() !== "").map(parseScalar);
    condition[parent] = values;
  }
  return Object.keys(condition).length ? condition : undefined;
}

export function conditionText(condition: unknown): string {
  return Object.entries(asObj(condition))
    .map(([parent, values]) => `${parent}=${(Array.isArray(values) ? values : [values]).map(String).join(",")}`)
    .join("; ");
}

/** A command line as an argv list: whitespace splits, quotes group. */
export function splitCommand(command: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(command))) out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] ?? m[3] ?? ""));
  return out;
}

function joinCommand(argv: unknown): string {
  if (typeof argv === "string") return argv;
  if (!Array.isArray(argv)) return "";
  return argv.map((a) => (/[\s"']/.test(String(a)) ? JSON.stringify(String(a)) : String(a))).join(" ");
}

function jsonText(value: unknown): string {
  return value && Object.keys(asObj(value)).length ? JSON.stringify(value, null, 1) : "";
}

export function studyToBody(s: StudyRead): Body {
  const more = s as StudyRead & { objectives?: unknown[]; constraints?: unknown[]; reference_point?: unknown };
  const many = Array.isArray(more.objectives) && more.objectives.length > 1;
  return {
    name: `${s.name} (copy)`,
    ...(many ? { objectives: more.objectives } : { objective: s.objective }),
    ...(more.constraints?.length ? { constraints: more.constraints } : {}),
    ...(many && Array.isArray(more.reference_point) ? { reference_point: more.reference_point } : {}),
    space: s.space,
    strategy: s.strategy,
    early_stopping: s.early_stopping,
    limits: s.limits,
    fidelity: s.fidelity,
    execution: s.execution,
    tags: s.tags,
    parent_study_id: s.id,
  };
}

export function createPage(root: HTMLElement, params: URLSearchParams): void {
  let mode: "form" | "json" | "yaml" = "form";
  let parentId: number | null = null;
  const formBox = h("div", { id: "study-form" });
  const text = h("textarea", { id: "study-text", rows: 30, class: "code", spellcheck: false, "aria-label": "study as text" });
  const textBox = h("div", { hidden: true }, text);
  const errorBox = h("div", { class: "error", role: "alert", id: "form-error" });
  const modeButtons = (["form", "json", "yaml"] as const).map((m) =>
    h("button", { type: "button", class: m === "form" ? "tab active" : "tab", "data-mode": m, onclick: () => switchMode(m) }, m.toUpperCase()),
  );
  const templateSel = h(
    "select",
    { id: "template", "aria-label": "template" },
    h("option", { value: "" }, "Start from a template…"),
    ...TEMPLATES.map((t) => h("option", { value: t.id }, t.label)),
  );
  templateSel.addEventListener("change", () => {
    const t = TEMPLATES.find((x) => x.id === templateSel.value);
    if (t) load(structuredClone(t.body));
  });

  // Inputs that readForm() reads back.
  let f: Record<string, HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement> = {};
  let spaceRows: HTMLElement;
  let metricRows: HTMLElement;
  const logSample = h("textarea", {
    id: "regex-sample", rows: 6, class: "code", spellcheck: false, "aria-label": "log lines to test",
    placeholder: "Paste log lines here, e.g.\nepoch 1 loss=0.9 val_acc=0.61\nepoch 2 loss=0.7 val_acc=0.68",
  });
  const regexOut = h("div", { id: "regex-results" });
  logSample.addEventListener("input", () => testRegexes());

  const field = (path: string, label: string, input: HTMLElement, hint = "") =>
    h("label", { class: "field", "data-field": path }, h("span", null, label), input, hint ? h("small", { class: "muted" }, hint) : null);
  const input = (path: string, value: unknown, attrs: Record<string, string | number | boolean> = {}) => {
    const el = h("input", { value: str(value), name: path, ...attrs });
    f[path] = el;
    return el;
  };
  const select = (path: string, options: string[], value: unknown) => {
    const el = h("select", { name: path }, ...options.map((o) => h("option", { value: o, selected: o === str(value) }, o || "none")));
    f[path] = el;
    return el;
  };
  const area = (path: string, value: string, placeholder = "") => {
    const el = h("textarea", { name: path, rows: 2, class: "code", placeholder, value });
    f[path] = el;
    return el;
  };

  function spaceRow(name: string, spec: Obj): HTMLElement {
    const typeSel = h("select", { class: "p-type", "aria-label": "type" }, ...PARAM_TYPES.map((t) => h("option", { value: t, selected: t === str(spec["type"] ?? "float") }, t)));
    const nameIn = h("input", { class: "p-name", value: name, placeholder: "name", "aria-label": "parameter name" });
    const cell = (cls: string, el: HTMLElement) => h("span", { class: `cell ${cls}` }, el);
    const low = h("input", { class: "p-low", type: "number", step: "any", value: str(spec["low"]), placeholder: "low", "aria-label": "low" });
    const high = h("input", { class: "p-high", type: "number", step: "any", value: str(spec["high"]), placeholder: "high", "aria-label": "high" });
    const scale = h("select", { class: "p-scale", "aria-label": "scale" }, ...SCALES.map((s) => h("option", { value: s, selected: s === str(spec["scale"] ?? "linear") }, s)));
    const step = h("input", { class: "p-step", type: "number", step: "any", value: str(spec["step"]), placeholder: "step", "aria-label": "step" });
    const choices = h("input", { class: "p-choices", value: Array.isArray(spec["choices"]) ? (spec["choices"] as unknown[]).join(", ") : "", placeholder: "a, b, c", "aria-label": "choices" });
    const value = h("input", { class: "p-value", value: str(spec["value"]), placeholder: "value", "aria-label": "value" });
    const role = h("input", { class: "p-role", value: str(spec["role"]), placeholder: "role (optional)", "aria-label": "role" });
    // Conditional parameters and priors (both optional) on a second line of the row.
    const condition = h("input", {
      class: "p-condition code", value: conditionText(spec["condition"]), "aria-label": "condition",
      placeholder: "only when, e.g. optimizer=sgd; nesterov=true",
    });
    const prior = asObj(spec["prior"]);
    const priorValue = h("input", { class: "p-prior", value: str(prior["value"]), placeholder: "prior: likely best value", "aria-label": "prior value" });
    const confidence = h(
      "select",
      { class: "p-confidence", "aria-label": "prior confidence" },
      ...["low", "medium", "high"].map((c) => h("option", { value: c, selected: c === str(prior["confidence"] ?? "medium") }, `${c} confidence`)),
    );
    const row = h("div", { class: "space-row" });
    const sync = () => {
      row.dataset.field = `space.${nameIn.value}`;
      row.dataset.type = typeSel.value;
      for (const [k, el] of Object.entries({ low, high, scale, step, choices, value, condition, prior: priorValue }) as [string, HTMLElement][]) {
        el.dataset.field = `space.${nameIn.value}.${k}`;
      }
      confidence.dataset.field = `space.${nameIn.value}.prior.confidence`;
    };
    nameIn.addEventListener("input", sync);
    typeSel.addEventListener("change", sync);
    row.append(
      cell("c-name", nameIn), cell("c-type", typeSel), cell("c-num", low), cell("c-num", high), cell("c-num", scale), cell("c-num", step),
      cell("c-choices", choices), cell("c-fixed", value), cell("c-role", role),
      h("button", { type: "button", class: "small", "aria-label": "remove parameter", onclick: () => row.remove() }, "✕"),
      h("span", { class: "cell c-extra" }, condition, priorValue, confidence),
    );
    sync();
    return row;
  }

  function readSpace(): Obj {
    const space: Obj = {};
    for (const row of Array.from(spaceRows.querySelectorAll<HTMLElement>(".space-row"))) {
      const q = <T extends HTMLElement>(cls: string) => row.querySelector(`.${cls}`) as T;
      const name = q<HTMLInputElement>("p-name").value.trim();
      const type = q<HTMLSelectElement>("p-type").value;
      const spec: Obj = { type };
      if (type === "float" || type === "int") {
        spec["low"] = num(q("p-low"));
        spec["high"] = num(q("p-high"));
        spec["scale"] = q<HTMLSelectElement>("p-scale").value;
        const step = num(q("p-step"));
        if (step !== undefined) spec["step"] = step;
      } else if (type === "categorical") {
        const raw = q<HTMLInputElement>("p-choices").value;
        spec["choices"] = raw.trim() ? raw.split(",").map(parseScalar) : [];
      } else {
        spec["value"] = parseScalar(q<HTMLInputElement>("p-value").value);
      }
      const role = q<HTMLInputElement>("p-role").value.trim();
      if (role) spec["role"] = role;
      const condition = parseCondition(q<HTMLInputElement>("p-condition").value);
      if (condition) spec["condition"] = condition;
      const priorText = q<HTMLInputElement>("p-prior").value;
      if (priorText.trim() !== "" && type !== "fixed") {
        spec["prior"] = { value: parseScalar(priorText), confidence: q<HTMLSelectElement>("p-confidence").value };
      }
      space[name] = spec;
    }
    return space;
  }

  // Objectives: the first row is `objective` (its inputs keep their single-objective
  // names); with two or three rows the study gets `objectives`.
  let objectiveRows: HTMLElement;
  let constraintRows: HTMLElement;
  function objectiveRow(o: Obj, i: number): HTMLElement {
    const row = h("div", { class: "row objective-row", "data-field": `objectives.${i}` });
    if (i === 0) {
      row.append(
        field("objective.metric", "Metric", input("objective.metric", o["metric"], { id: "f-metric", class: "o-metric" })),
        field("objective.direction", "Direction", select("objective.direction", ["minimize", "maximize"], o["direction"] ?? "minimize")),
        field("objective.aggregate", "Trial value", select("objective.aggregate", ["last", "best"], o["aggregate"] ?? "last")),
      );
      f["objective.metric"]!.classList.add("o-metric");
      f["objective.direction"]!.classList.add("o-direction");
      f["objective.aggregate"]!.classList.add("o-aggregate");
      return row;
    }
    const metric = h("input", { class: "o-metric", value: str(o["metric"]), placeholder: "metric", "aria-label": `objective ${i + 1} metric` });
    const direction = h("select", { class: "o-direction", "aria-label": `objective ${i + 1} direction` },
      ...["minimize", "maximize"].map((d) => h("option", { value: d, selected: d === str(o["direction"] ?? "minimize") }, d)));
    const aggregate = h("select", { class: "o-aggregate", "aria-label": `objective ${i + 1} trial value` },
      ...["last", "best"].map((d) => h("option", { value: d, selected: d === str(o["aggregate"] ?? "last") }, d)));
    row.append(
      h("label", { class: "field", "data-field": `objectives.${i}.metric` }, h("span", null, `Metric ${i + 1}`), metric),
      h("label", { class: "field", "data-field": `objectives.${i}.direction` }, h("span", null, "Direction"), direction),
      h("label", { class: "field", "data-field": `objectives.${i}.aggregate` }, h("span", null, "Trial value"), aggregate),
      h("button", { type: "button", class: "small", "aria-label": "remove objective", onclick: () => { row.remove(); renumberObjectives(); } }, "✕"),
    );
    return row;
  }

  function renumberObjectives(): void {
    Array.from(objectiveRows.children).forEach((row, i) => { (row as HTMLElement).dataset.field = `objectives.${i}`; });
    const many = objectiveRows.children.length > 1;
    (formBox.querySelector(".reference-point") as HTMLElement | null)?.toggleAttribute("hidden", !many);
  }

  function readObjectives(): Obj[] {
    return Array.from(objectiveRows.querySelectorAll<HTMLElement>(".objective-row")).map((row) => ({
      metric: (row.querySelector(".o-metric") as HTMLInputElement).value.trim(),
      direction: (row.querySelector(".o-direction") as HTMLSelectElement).value,
      aggregate: (row.querySelector(".o-aggregate") as HTMLSelectElement).value,
    }));
  }

  function constraintRow(c: Obj): HTMLElement {
    const row = h("div", { class: "row constraint-row" });
    const metric = h("input", { class: "k-metric", value: str(c["metric"]), placeholder: "metric, e.g. memory_gib", "aria-label": "constraint metric" });
    const op = h("select", { class: "k-op", "aria-label": "constraint operator" }, ...["<=", ">="].map((o) => h("option", { value: o, selected: o === str(c["op"] ?? "<=") }, o)));
    const limit = h("input", { class: "k-value", type: "number", step: "any", value: str(c["value"]), placeholder: "limit", "aria-label": "constraint limit" });
    row.append(metric, op, limit, h("button", { type: "button", class: "small", "aria-label": "remove constraint", onclick: () => { row.remove(); renumberConstraints(); } }, "✕"));
    return row;
  }

  function renumberConstraints(): void {
    Array.from(constraintRows.children).forEach((row, i) => {
      (row as HTMLElement).dataset.field = `constraints.${i}`;
      (row.querySelector(".k-metric") as HTMLElement).dataset.field = `constraints.${i}.metric`;
      (row.querySelector(".k-op") as HTMLElement).dataset.field = `constraints.${i}.op`;
      (row.querySelector(".k-value") as HTMLElement).dataset.field = `constraints.${i}.value`;
    });
  }

  function readConstraints(): Obj[] {
    return Array.from(constraintRows.querySelectorAll<HTMLElement>(".constraint-row")).map((row) => ({
      metric: (row.querySelector(".k-metric") as HTMLInputElement).value.trim(),
      op: (row.querySelector(".k-op") as HTMLSelectElement).value,
      value: num(row.querySelector(".k-value") as HTMLInputElement),
    }));
  }

  function metricRow(def: Obj): HTMLElement {
    const row = h("div", { class: "metric-row" });
    const nameIn = h("input", { class: "m-name", value: str(def["name"]), placeholder: "metric name", "aria-label": "metric name" });
    const regexIn = h("input", { class: "m-regex code", value: str(def["regex"]), placeholder: "epoch (?P<step>\\d+).*loss=(?P<value>[-+0-9.eE]+)", "aria-label": "metric regex" });
    nameIn.addEventListener("input", testRegexes);
    regexIn.addEventListener("input", testRegexes);
    row.append(nameIn, regexIn, h("button", { type: "button", class: "small", "aria-label": "remove metric", onclick: () => { row.remove(); renumberMetrics(); testRegexes(); } }, "✕"));
    return row;
  }

  function renumberMetrics(): void {
    Array.from(metricRows.children).forEach((row, i) => {
      (row as HTMLElement).dataset.field = `execution.metric_definitions.${i}`;
      (row.querySelector(".m-name") as HTMLElement).dataset.field = `execution.metric_definitions.${i}.name`;
      (row.querySelector(".m-regex") as HTMLElement).dataset.field = `execution.metric_definitions.${i}.regex`;
    });
  }

  function readMetrics(): Obj[] {
    return Array.from(metricRows.querySelectorAll<HTMLElement>(".metric-row")).map((row) => ({
      name: (row.querySelector(".m-name") as HTMLInputElement).value.trim(),
      regex: (row.querySelector(".m-regex") as HTMLInputElement).value,
    }));
  }

  function testRegexes(): void {
    const sample = logSample.value;
    clear(
      regexOut,
      readMetrics().map((def) => {
        let result: Node;
        try {
          const found = def["regex"] ? extract(String(def["regex"]), sample) : [];
          result = found.length
            ? h("span", null, found.map((p) => `step ${p.step}: ${p.value}`).join(" · "))
            : h("span", { class: "muted" }, sample ? "no match" : "paste log lines to test");
        } catch (err) {
          result = h("span", { class: "error" }, `invalid regex: ${(err as Error).message}`);
        }
        return h("div", { class: "regex-result", "data-metric": str(def["name"]) }, h("strong", null, str(def["name"]) || "(unnamed)"), " → ", result);
      }),
    );
  }

  function renderForm(body: Body): void {
    f = {};
    const objectives = Array.isArray(body["objectives"]) && body["objectives"].length
      ? (body["objectives"] as unknown[]).map(asObj)
      : [asObj(body["objective"])];
    const constraints = Array.isArray(body["constraints"]) ? (body["constraints"] as unknown[]).map(asObj) : [];
    const reference = Array.isArray(body["reference_point"]) ? (body["reference_point"] as unknown[]).join(", ") : "";
    const strategy = { ...asObj(body["strategy"]) };
    const early = asObj(body["early_stopping"]);
    const limits = asObj(body["limits"]);
    const fidelity = body["fidelity"] ? asObj(body["fidelity"]) : null;
    const execution = body["execution"] ? asObj(body["execution"]) : null;
    parentId = typeof body["parent_study_id"] === "number" ? body["parent_study_id"] : null;
    const { name: strategyName, seed, ...strategyOptions } = strategy;
    const { rule, ...earlyOptions } = early;
    const { command, args, gpus_per_trial, metric_definitions, ...executionMore } = execution ?? {};

    objectiveRows = h("div", { class: "objective-rows" });
    objectives.forEach((o, i) => objectiveRows.append(objectiveRow(o, i)));
    constraintRows = h("div", { class: "constraint-rows" }, constraints.map(constraintRow));
    renumberConstraints();
    spaceRows = h("div", { class: "space-rows" }, Object.entries(asObj(body["space"])).map(([n, s]) => spaceRow(n, asObj(s))));
    metricRows = h("div", { class: "metric-rows" }, (Array.isArray(metric_definitions) ? metric_definitions : []).map((d) => metricRow(asObj(d))));
    renumberMetrics();
    const fidelityOn = h("input", { type: "checkbox", checked: Boolean(fidelity), name: "fidelity.enabled" });
    f["fidelity.enabled"] = fidelityOn;

    clear(
      formBox,
      h("fieldset", null, h("legend", null, "Study"), field("name", "Name", input("name", body["name"], { required: true, id: "f-name" }))),
      h("fieldset", { "data-field": "objectives" }, h("legend", null, "Objectives"),
        objectiveRows,
        h("button", { type: "button", id: "add-objective", onclick: () => {
          if (objectiveRows.children.length >= 3) return;
          objectiveRows.append(objectiveRow({ direction: "minimize" }, objectiveRows.children.length));
          renumberObjectives();
        } }, "+ objective"),
        h("div", { class: "reference-point", hidden: objectives.length < 2 },
          field("reference_point", "Hypervolume reference point", input("reference_point", reference, { placeholder: "one value per objective, e.g. 0, 100 (empty: derived)" }))),
        h("h3", null, "Constraints"),
        constraintRows,
        h("button", { type: "button", id: "add-constraint", onclick: () => { constraintRows.append(constraintRow({})); renumberConstraints(); } }, "+ constraint")),
      h("fieldset", { "data-field": "space" }, h("legend", null, "Search space"),
        h("div", { class: "space-head" }, ...["name", "type", "low", "high", "scale", "step", "choices", "value", "role", ""].map((c) => h("span", null, c))),
        spaceRows,
        h("button", { type: "button", id: "add-param", onclick: () => spaceRows.append(spaceRow(`p${spaceRows.children.length + 1}`, { type: "float", low: 0, high: 1 })) }, "+ parameter")),
      h("fieldset", null, h("legend", null, "Strategy"),
        h("div", { class: "row" },
          field("strategy.name", "Strategy", select("strategy.name", STRATEGIES, strategyName ?? "random")),
          field("strategy.seed", "Seed", input("strategy.seed", seed, { type: "number" })),
          field("strategy", "Options (JSON)", area("strategy.options", jsonText(strategyOptions), '{"sampler": "tpe", "mode": "pause"}'))),
        h("div", { class: "row" },
          field("early_stopping.rule", "Early stopping", select("early_stopping.rule", ["", "median", "forecast"], rule ?? "")),
          field("early_stopping", "Rule options (JSON)", area("early_stopping.options", jsonText(earlyOptions), '{"min_trials": 5, "warmup_steps": 0}')))),
      h("fieldset", null, h("legend", null, "Limits"),
        h("div", { class: "row wrap" }, LIMIT_FIELDS.map(([k, label]) => field(`limits.${k}`, label, input(`limits.${k}`, limits[k], { type: "number", step: "any" }))))),
      h("fieldset", { "data-field": "fidelity" }, h("legend", null, "Fidelity"),
        h("label", null, fidelityOn, " trials get a budget (epochs, data fraction) that schedulers raise"),
        h("div", { class: "row" },
          field("fidelity.param", "Parameter", input("fidelity.param", fidelity?.["param"] ?? "epochs")),
          field("fidelity.min", "Min", input("fidelity.min", fidelity?.["min"] ?? 1, { type: "number", step: "any" })),
          field("fidelity.max", "Max", input("fidelity.max", fidelity?.["max"] ?? 27, { type: "number", step: "any" })),
          field("fidelity.reduction_factor", "Reduction factor", input("fidelity.reduction_factor", fidelity?.["reduction_factor"] ?? 3, { type: "number", step: "any" })))),
      h("fieldset", { "data-field": "execution" }, h("legend", null, "Execution"),
        h("div", { class: "row" },
          field("execution.command", "Command", input("execution.command", joinCommand(command), { class: "code wide", placeholder: "python train.py" }), "empty: trials are run by your own client"),
          field("execution.args", "Parameters as", select("execution.args", ["flags", "template"], args ?? "flags")),
          field("execution.gpus_per_trial", "GPUs per trial", input("execution.gpus_per_trial", gpus_per_trial, { type: "number" }))),
        field("execution", "More options (JSON: env, working_dir, timeout_s, queue, checkpoint…)", area("execution.more", jsonText(executionMore))),
        h("h3", null, "Metric definitions"),
        metricRows,
        h("button", { type: "button", id: "add-metric", onclick: () => { metricRows.append(metricRow({})); renumberMetrics(); testRegexes(); } }, "+ metric"),
        h("div", { class: "regex-tester" }, h("h3", null, "Regex tester"), logSample, regexOut)),
      h("fieldset", null, h("legend", null, "Tags"), field("tags", "Tags (JSON)", area("tags", jsonText(body["tags"]), '{"team": "vision"}'))),
    );
    testRegexes();
  }

  function parseJsonField(path: string): Obj {
    const raw = f[path]?.value.trim() ?? "";
    if (!raw) return {};
    try {
      return asObj(JSON.parse(raw));
    } catch {
      throw new ApiError(422, "not valid JSON", path.replace(/\.(options|more)$/, ""), [{ field: path.replace(/\.(options|more)$/, ""), detail: "not valid JSON" }]);
    }
  }

  function readForm(): Body {
    const v = (path: string) => f[path]?.value ?? "";
    const n = (path: string) => num(f[path] as HTMLInputElement);
    const objectives = readObjectives();
    const body: Body = {
      name: v("name"),
      ...(objectives.length > 1
        ? { objectives }
        : { objective: { metric: v("objective.metric"), direction: v("objective.direction"), aggregate: v("objective.aggregate") } }),
      space: readSpace(),
      strategy: { ...parseJsonField("strategy.options"), name: v("strategy.name"), ...(n("strategy.seed") !== undefined ? { seed: n("strategy.seed") } : {}) },
    };
    if (v("early_stopping.rule")) body["early_stopping"] = { ...parseJsonField("early_stopping.options"), rule: v("early_stopping.rule") };
    const limits: Obj = {};
    for (const [k] of LIMIT_FIELDS) if (n(`limits.${k}`) !== undefined) limits[k] = n(`limits.${k}`);
    body["limits"] = limits;
    if ((f["fidelity.enabled"] as HTMLInputElement).checked) {
      body["fidelity"] = { param: v("fidelity.param"), min: n("fidelity.min"), max: n("fidelity.max"), reduction_factor: n("fidelity.reduction_factor") };
    }
    const command = splitCommand(v("execution.command"));
    const metrics = readMetrics();
    if (command.length || metrics.length) {
      const execution: Obj = { ...parseJsonField("execution.more"), command, args: v("execution.args"), metric_definitions: metrics };
      if (n("execution.gpus_per_trial") !== undefined) execution["gpus_per_trial"] = n("execution.gpus_per_trial");
      body["execution"] = execution;
    }
    const constraints = readConstraints();
    if (constraints.length) body["constraints"] = constraints;
    const reference = v("reference_point").trim();
    if (objectives.length > 1 && reference) body["reference_point"] = reference.split(",").map((x) => parseScalar(x));
    const tags = parseJsonField("tags");
    if (Object.keys(tags).length) body["tags"] = tags;
    if (parentId !== null) body["parent_study_id"] = parentId;
    return body;
  }

  function readText(): Body {
    const raw = text.value;
    const parsed = mode === "yaml" ? parseYaml(raw) : JSON.parse(raw);
    return asObj(parsed);
  }

  function load(body: Body): void {
    if (mode === "form") renderForm(body);
    else text.value = mode === "yaml" ? toYaml(body) : JSON.stringify(body, null, 2);
  }

  function switchMode(next: typeof mode): void {
    if (next === mode) return;
    let body: Body;
    try {
      body = mode === "form" ? readForm() : readText();
    } catch (err) {
      showErrors(err instanceof ApiError ? err.errors : [{ field: "body", detail: `cannot parse: ${(err as Error).message}` }], "");
      return;
    }
    showErrors([], "");
    mode = next;
    modeButtons.forEach((b) => b.classList.toggle("active", b.dataset.mode === next));
    formBox.hidden = next !== "form";
    textBox.hidden = next === "form";
    load(body);
  }

  function showErrors(errors: FieldError[], summary: string): void {
    root.querySelectorAll(".field-error").forEach((e) => e.remove());
    root.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
    clear(errorBox);
    const unplaced: FieldError[] = [];
    for (const error of errors) {
      const found = mode === "form" ? findField(error.field) : null;
      if (!found) {
        unplaced.push(error);
        continue;
      }
      // Placed on an enclosing field (a misspelled option inside the options JSON): the
      // message names the part the form has no field for.
      const rest = error.field.slice(found.path.length + 1);
      const detail = rest ? `${rest}: ${error.detail}` : error.detail;
      found.el.classList.add("invalid");
      found.el.append(h("div", { class: "field-error", "data-error-for": error.field }, detail));
    }
    if (summary) errorBox.append(h("p", null, summary));
    if (unplaced.length) errorBox.append(h("ul", null, unplaced.map((e) => h("li", null, h("code", null, e.field), ": ", e.detail))));
  }

  function findField(path: string): { el: HTMLElement; path: string } | null {
    const parts = path.split(".");
    while (parts.length) {
      const at = parts.join(".");
      const el = formBox.querySelector<HTMLElement>(`[data-field="${CSS.escape(at)}"]`);
      if (el) return { el: el.tagName === "INPUT" || el.tagName === "SELECT" ? (el.parentElement ?? el) : el, path: at };
      parts.pop();
    }
    return null;
  }

  const submit = h("button", { type: "submit", id: "create-study", class: "primary" }, "Create study");
  const form = h(
    "form",
    {
      novalidate: true,
      onsubmit: async (e: Event) => {
        e.preventDefault();
        let body: Body;
        try {
          body = mode === "form" ? readForm() : readText();
        } catch (err) {
          showErrors(err instanceof ApiError ? err.errors : [{ field: "body", detail: `cannot parse: ${(err as Error).message}` }], "");
          return;
        }
        submit.disabled = true;
        try {
          const study = await api.createStudy(body);
          navigate(`/studies/${study.id}`);
        } catch (err) {
          if (err instanceof ApiError) showErrors(err.errors.length ? err.errors : [{ field: err.field ?? "body", detail: err.detail }], "The study was not created: fix the marked fields.");
          else showErrors([], String(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h("div", { class: "row between" }, h("h1", null, "New study"), h("div", { class: "row" }, templateSel, ...modeButtons)),
    errorBox,
    formBox,
    textBox,
    h("div", { class: "row" }, submit),
  );
  root.append(h("section", { class: "card" }, form));

  const clone = Number(params.get("clone"));
  const template = TEMPLATES.find((t) => t.id === params.get("template"));
  if (clone) {
    renderForm(EMPTY);
    api.getStudy(clone).then((s) => renderForm(studyToBody(s)), (err) => showErrors([], String(err)));
  } else {
    renderForm(structuredClone(template ? template.body : EMPTY));
  }
}
