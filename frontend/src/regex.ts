// The live regex tester: what each metric definition extracts from pasted log lines,
// with the runner's rules: a `value` group (else the first group) is the value; a `step`
// group is the step, and without one the step counts occurrences.

export interface Extracted {
  step: number;
  value: number;
  line: number;
}

/** Python / RE2 named groups in JavaScript syntax. */
export function toJsRegex(pattern: string): RegExp {
  const js = pattern.replace(/\(\?P<([A-Za-z_]\w*)>/g, "(?<$1>").replace(/\(\?P=([A-Za-z_]\w*)\)/g, "\\k<$1>");
  return new RegExp(js);
}

export function extract(pattern: string, text: string): Extracted[] {
  const regex = toJsRegex(pattern);
  const out: Extracted[] = [];
  let count = 0;
  text.split(/\r?\n/).forEach((line, index) => {
    const match = regex.exec(line);
    if (!match) return;
    const raw = match.groups?.["value"] ?? match[1] ?? match[0];
    const value = Number(raw);
    if (raw === undefined || Number.isNaN(value) && !/nan/i.test(raw)) return;
    const stepRaw = match.groups?.["step"];
    const step = stepRaw !== undefined ? Number(stepRaw) : count;
    count += 1;
    out.push({ step, value, line: index + 1 });
  });
  return out;
}
