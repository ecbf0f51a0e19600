// A small Markdown renderer for notes that builds DOM nodes, never HTML strings: every
// piece of the source ends up in a text node, so raw HTML (`<script>`, `<img onerror>`)
// shows as the text it is. Links keep only http, https and mailto URLs and relative ones;
// images become links (a note never loads anything by itself).
//
// Blocks: ATX headings, paragraphs (a line ending in two spaces or `\` breaks), fenced
// code (``` or ~~~), indented lists (-, *, + and 1. or 1), nested; `[ ]`/`[x]` items),
// block quotes, thematic breaks (---) and pipe tables. Inline: `code`, **strong**,
// *emphasis*, ~~strike~~, [links](url "title"), <https://autolinks>, bare https:// URLs
// and backslash escapes.
import { h } from "./dom";

const SAFE_SCHEMES = new Set(["http", "https", "mailto"]);

/** The URL when a note may link to it (http, https, mailto or relative), else null. */
export function safeHref(raw: string): string | null {
  const url = raw.trim();
  if (!url) return null;
  // Browsers drop tabs, newlines and control characters inside a URL (`java\tscript:`):
  // look for the scheme without them.
  const compact = url.replace(/[\u0000-\u0020\u007f-\u009f]/g, "");
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(compact);
  if (scheme) return SAFE_SCHEMES.has(scheme[1]!.toLowerCase()) ? url : null;
  if (/^[a-z0-9+.-]*&/i.test(compact)) return null; // `javascript&colon;` and the like
  return url;
}

/** The note as a fragment of safe DOM nodes. */
export function renderMarkdown(source: string): DocumentFragment {
  const fragment = document.createDocumentFragment();
  const lines = source.replace(/\r\n?/g, "\n").replace(/\t/g, "    ").split("\n");
  for (const node of blocks(lines, 0)) fragment.append(node);
  return fragment;
}

const FENCE = /^ {0,3}(`{3,}|~{3,})\s*([^`\s]*)/;
const HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const RULE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE = /^ {0,3}> ?/;
const BULLET = /^( {0,3})([-*+])( +|$)/;
const ORDERED = /^( {0,3})(\d{1,9})([.)])( +|$)/;
const TABLE_RULE = /^ {0,3}\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;
const MAX_DEPTH = 12; // nested lists and quotes beyond this are shown as text

function startsBlock(line: string): boolean {
  return FENCE.test(line) || HEADING.test(line) || RULE.test(line) || QUOTE.test(line) || BULLET.test(line) || ORDERED.test(line);
}

function blocks(lines: string[], depth: number): Node[] {
  const out: Node[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (!line.trim()) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1]!;
      const body: string[] = [];
      i++;
      while (i < lines.length && !new RegExp(`^ {0,3}${marker[0]}{${marker.length},}\\s*$`).test(lines[i]!)) body.push(lines[i++]!);
      i++; // the closing fence (or the end)
      const lang = fence[2]!.replace(/[^\w+-]/g, "");
      out.push(h("pre", null, h("code", lang ? { class: `language-${lang}` } : null, body.join("\n"))));
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      // A note sits in a card under its own heading: `#` is the card's third level.
      const level = Math.min(6, heading[1]!.length + 2) as 3 | 4 | 5 | 6;
      out.push(h(`h${level}`, { class: "md-heading" }, ...inline(heading[2] ?? "")));
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push(h("hr"));
      i++;
      continue;
    }
    if (QUOTE.test(line) && depth < MAX_DEPTH) {
      const body: string[] = [];
      while (i < lines.length && lines[i]!.trim() && (QUOTE.test(lines[i]!) || !startsBlock(lines[i]!))) {
        body.push(lines[i]!.replace(QUOTE, ""));
        i++;
      }
      out.push(h("blockquote", null, ...blocks(body, depth + 1)));
      continue;
    }
    if ((BULLET.test(line) || ORDERED.test(line)) && depth < MAX_DEPTH) {
      const [list, next] = listAt(lines, i, depth);
      out.push(list);
      i = next;
      continue;
    }
    if (line.includes("|") && i + 1 < lines.length && TABLE_RULE.test(lines[i + 1]!) && lines[i + 1]!.includes("-")) {
      const [table, next] = tableAt(lines, i);
      out.push(table);
      i = next;
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && lines[i]!.trim() && (para.length === 0 || !startsBlock(lines[i]!))) para.push(lines[i++]!);
    out.push(h("p", null, ...paragraph(para)));
  }
  return out;
}

function paragraph(lines: string[]): Node[] {
  const out: Node[] = [];
  lines.forEach((raw, n) => {
    const last = n === lines.length - 1;
    const hard = !last && (/ {2,}$/.test(raw) || /\\$/.test(raw));
    const text = raw.trim().replace(/\\$/, last ? "\\" : "");
    out.push(...inline(text));
    if (hard) out.push(h("br"));
    else if (!last) out.push(document.createTextNode("\n"));
  });
  return out;
}

function listAt(lines: string[], start: number, depth: number): [HTMLElement, number] {
  const first = ORDERED.exec(lines[start]!);
  const ordered = first !== null;
  const list = ordered ? h("ol", Number(first[2]) !== 1 ? { start: Number(first[2]) } : null) : h("ul");
  let i = start;
  while (i < lines.length) {
    const m = ordered ? ORDERED.exec(lines[i]!) : BULLET.exec(lines[i]!);
    if (!m) break;
    const markerWidth = m[0].length;
    const body = [lines[i]!.slice(markerWidth)];
    i++;
    // The item goes on over lines indented past its marker, blank lines between them,
    // and lazy continuation lines of its paragraph.
    while (i < lines.length) {
      const next = lines[i]!;
      const indent = next.length - next.trimStart().length;
      if (!next.trim()) {
        const after = lines[i + 1];
        if (after !== undefined && after.trim() && after.length - after.trimStart().length >= Math.min(markerWidth, 2)) {
          body.push("");
          i++;
          continue;
        }
        break;
      }
      if (indent >= Math.min(markerWidth, 2)) body.push(next.slice(Math.min(indent, markerWidth)));
      else if (!startsBlock(next) && body[body.length - 1]!.trim()) body.push(next);
      else break;
      i++;
    }
    list.append(listItem(body, depth));
    while (i < lines.length && !lines[i]!.trim()) {
      // A blank line between items keeps the list; anything else ends it.
      const after = lines[i + 1];
      if (after !== undefined && (ordered ? ORDERED : BULLET).test(after)) i++;
      else break;
    }
  }
  return [list, i];
}

function listItem(body: string[], depth: number): HTMLLIElement {
  const task = /^\[([ xX])\] +/.exec(body[0]!);
  if (task) body[0] = body[0]!.slice(task[0].length);
  const content = blocks(body, depth + 1);
  // A tight item: its one paragraph's words, without the <p>.
  const nodes = content.length && content[0] instanceof HTMLParagraphElement ? [...content[0].childNodes, ...content.slice(1)] : content;
  const item = h("li", task ? { class: "md-task" } : null);
  if (task) item.append(h("input", { type: "checkbox", disabled: true, checked: task[1] !== " " }), " ");
  item.append(...nodes);
  return item;
}

function cells(line: string): string[] {
  let text = line.trim();
  if (text.startsWith("|")) text = text.slice(1);
  if (text.endsWith("|") && !text.endsWith("\\|")) text = text.slice(0, -1);
  const out: string[] = [];
  let current = "";
  for (let k = 0; k < text.length; k++) {
    if (text[k] === "\\" && text[k + 1] === "|") {
      current += "|";
      k++;
    } else if (text[k] === "|") {
      out.push(current.trim());
      current = "";
    } else current += text[k];
  }
  out.push(current.trim());
  return out;
}

function tableAt(lines: string[], start: number): [HTMLElement, number] {
  const head = cells(lines[start]!);
  const aligns = cells(lines[start + 1]!).map((c) => (c.startsWith(":") && c.endsWith(":") ? "center" : c.endsWith(":") ? "right" : c.startsWith(":") ? "left" : ""));
  const cell = (tag: "th" | "td", text: string, k: number) => h(tag, aligns[k] ? { style: `text-align: ${aligns[k]}` } : null, ...inline(text));
  const body = h("tbody");
  let i = start + 2;
  while (i < lines.length && lines[i]!.trim() && lines[i]!.includes("|")) {
    const row = cells(lines[i]!);
    body.append(h("tr", null, ...head.map((_, k) => cell("td", row[k] ?? "", k))));
    i++;
  }
  return [h("table", { class: "table md-table" }, h("thead", null, h("tr", null, ...head.map((c, k) => cell("th", c, k)))), body), i];
}

// Inline ------------------------------------------------------------------------------

// Bounds on what one delimiter looks through: rendering stays about linear in the note.
const MAX_TRIES = 200;
const MAX_LABEL = 1000;
const PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
const BARE_URL = /^https?:\/\/[^\s<>"]*[^\s<>".,;:!?)\]'*_~]/;

function link(href: string, title: string | null, children: Node[]): Node {
  const safe = safeHref(href);
  if (safe === null) {
    // Shown, never followed: the text, and the refused address in its title.
    return h("span", { class: "md-unsafe-link", title: `link removed: ${href}` }, ...children);
  }
  const internal = safe.startsWith("/") && !safe.startsWith("//");
  const attrs: Record<string, string | boolean | null> = { href: safe, title };
  if (internal) attrs["data-link"] = true;
  else {
    attrs["target"] = "_blank";
    attrs["rel"] = "noopener noreferrer nofollow";
  }
  return h("a", attrs, ...children);
}

/** The text's inline nodes. `depth` bounds nesting (emphasis in links in emphasis...). */
export function inline(text: string, depth = 0): Node[] {
  const out: Node[] = [];
  let plain = "";
  const flush = () => {
    if (plain) out.push(document.createTextNode(plain));
    plain = "";
  };
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === "\\" && i + 1 < text.length && PUNCTUATION.includes(text[i + 1]!)) {
      plain += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "`") {
      let run = 0;
      while (text[i + run] === "`") run++;
      const close = text.indexOf("`".repeat(run), i + run);
      if (close > 0 && text[close + run] !== "`") {
        flush();
        let code = text.slice(i + run, close);
        if (code.length > 2 && code.startsWith(" ") && code.endsWith(" ")) code = code.slice(1, -1);
        out.push(h("code", null, code));
        i = close + run;
        continue;
      }
      plain += "`".repeat(run);
      i += run;
      continue;
    }
    if (depth < 8 && (c === "[" || (c === "!" && text[i + 1] === "["))) {
      const parsed = parseLink(text, c === "!" ? i + 1 : i);
      if (parsed) {
        flush();
        const label = inline(parsed.label, depth + 1);
        if (c === "!") out.push(link(parsed.href, parsed.title, [document.createTextNode("🖼 "), ...(label.length ? label : [document.createTextNode(parsed.href)])]));
        else out.push(link(parsed.href, parsed.title, label));
        i = parsed.end;
        continue;
      }
    }
    if (c === "<") {
      const auto = /^<((?:https?:\/\/|mailto:)[^\s<>]+)>/i.exec(text.slice(i));
      if (auto) {
        flush();
        out.push(link(auto[1]!, null, [document.createTextNode(auto[1]!.replace(/^mailto:/i, ""))]));
        i += auto[0].length;
        continue;
      }
    }
    if ((c === "h" || c === "H") && (i === 0 || /[\s(]/.test(text[i - 1]!))) {
      const bare = BARE_URL.exec(text.slice(i));
      if (bare) {
        flush();
        out.push(link(bare[0], null, [document.createTextNode(bare[0])]));
        i += bare[0].length;
        continue;
      }
    }
    if (depth < 8 && (c === "*" || c === "_" || c === "~")) {
      const span = emphasis(text, i, depth);
      if (span) {
        flush();
        out.push(span.node);
        i = span.end;
        continue;
      }
      // Not emphasis: the whole run is text (retrying from each of its characters would
      // make a long run of asterisks quadratic).
      let run = 1;
      while (text[i + run] === c) run++;
      plain += text.slice(i, i + run);
      i += run;
      continue;
    }
    plain += c;
    i++;
  }
  flush();
  return out;
}

function parseLink(text: string, open: number): { label: string; href: string; title: string | null; end: number } | null {
  // [label] with nested brackets, then (destination "optional title")
  let level = 0;
  let k = open;
  const end = Math.min(text.length, open + MAX_LABEL);
  for (; k < end; k++) {
    if (text[k] === "\\") {
      k++;
      continue;
    }
    if (text[k] === "[") level++;
    else if (text[k] === "]" && --level === 0) break;
  }
  if (k >= end || text[k + 1] !== "(") return null;
  const label = text.slice(open + 1, k);
  let j = k + 2;
  while (text[j] === " ") j++;
  let href = "";
  if (text[j] === "<") {
    const close = text.indexOf(">", j);
    if (close < 0) return null;
    href = text.slice(j + 1, close);
    j = close + 1;
  } else {
    let parens = 0;
    for (; j < text.length; j++) {
      const ch = text[j]!;
      if (ch === "\\" && j + 1 < text.length) {
        href += text[++j];
        continue;
      }
      if (ch === "(") parens++;
      else if (ch === ")") {
        if (parens === 0) break;
        parens--;
      } else if (ch === " ") break;
      href += ch;
    }
  }
  while (text[j] === " ") j++;
  let title: string | null = null;
  const quote = text[j];
  if (quote === '"' || quote === "'") {
    const close = text.indexOf(quote, j + 1);
    if (close < 0) return null;
    title = text.slice(j + 1, close);
    j = close + 1;
    while (text[j] === " ") j++;
  }
  if (text[j] !== ")") return null;
  return { label, href, title, end: j + 1 };
}

function emphasis(text: string, start: number, depth: number): { node: Node; end: number } | null {
  const c = text[start]!;
  let run = 0;
  while (text[start + run] === c) run++;
  if (c === "~" && run !== 2) return null;
  const width = c === "~" ? 2 : Math.min(run, 3);
  const after = text[start + width];
  if (after === undefined || /\s/.test(after)) return null; // not a left-flanking run
  // `_` inside a word (snake_case) is a letter, not emphasis.
  if (c === "_" && start > 0 && /[\p{L}\p{N}]/u.test(text[start - 1]!)) return null;
  const marker = c.repeat(width);
  let k = start + width;
  let tries = 0; // bounded: a note of stray markers stays linear
  while ((k = text.indexOf(marker, k)) > 0 && tries++ < MAX_TRIES) {
    // A closer is a run of exactly as many markers: `*a **b** c*` closes at the last one.
    let closerRun = 0;
    while (text[k + closerRun] === c) closerRun++;
    if (closerRun !== width) {
      k += closerRun;
      continue;
    }
    const before = text[k - 1]!;
    const next = text[k + width];
    const closes = !/\s/.test(before) && before !== "\\" && (c !== "_" || next === undefined || !/[\p{L}\p{N}]/u.test(next));
    if (closes && k > start + width) {
      const inner = inline(text.slice(start + width, k), depth + 1);
      let node: HTMLElement;
      if (c === "~") node = h("del", null, ...inner);
      else if (width === 3) node = h("strong", null, h("em", null, ...inner));
      else node = h(width === 2 ? "strong" : "em", null, ...inner);
      return { node, end: k + width };
    }
    k += 1;
  }
  return null;
}
