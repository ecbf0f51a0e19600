// Notes (Markdown, rendered by ../../markdown.ts) on a study or a trial, and a trial's
// tags as chips. Both save through the caller's `save` and show what the server answered.
import { ApiError } from "../../api/client";
import { clear, h } from "../../dom";
import { renderMarkdown } from "../../markdown";

export const NOTES_MAX_BYTES = 64 * 1024;

export interface Annotated {
  notes: string;
  notes_updated_at?: string | null;
  notes_updated_by?: string | null;
}

export interface NotesPanel {
  readonly el: HTMLElement;
  /** Shows the stored note; while it is being edited, only remembers it. */
  show(data: Annotated): void;
}

function errorText(err: unknown): string {
  if (err instanceof ApiError) return err.field ? `${err.field}: ${err.detail}` : err.detail;
  return String(err);
}

export function createNotesPanel(id: string, save: (notes: string) => Promise<Annotated>): NotesPanel {
  let stored: Annotated = { notes: "" };
  let editing = false;
  const view = h("div", { class: "markdown", "data-notes-view": true });
  const meta = h("span", { class: "muted notes-meta" });
  const message = h("p", { class: "error", role: "alert" });
  const editBtn = h("button", { type: "button", class: "small", "data-notes-edit": true }, "Edit");
  const body = h("div");
  const el = h(
    "section",
    { class: "card notes-card", id },
    h("div", { class: "row between" }, h("h2", null, "Notes"), h("div", { class: "row" }, meta, editBtn)),
    body,
    message,
  );

  function renderView(): void {
    clear(body, view);
    clear(view, stored.notes.trim() ? renderMarkdown(stored.notes) : h("p", { class: "muted" }, "No notes yet. Edit to write some (Markdown)."));
    const when = stored.notes_updated_at ? new Date(stored.notes_updated_at).toLocaleString() : "";
    meta.textContent = when ? `edited ${when}${stored.notes_updated_by ? ` by ${stored.notes_updated_by}` : ""}` : "";
    editBtn.hidden = false;
  }

  function startEditing(): void {
    editing = true;
    message.textContent = "";
    editBtn.hidden = true;
    const input = h("textarea", { class: "notes-input", rows: 12, "aria-label": "notes (Markdown)", spellcheck: "true" });
    input.value = stored.notes;
    const preview = h("div", { class: "markdown notes-preview", "data-notes-preview": true });
    const size = h("span", { class: "muted" });
    const saveBtn = h("button", { type: "button", "data-notes-save": true }, "Save");
    const cancelBtn = h("button", { type: "button", "data-notes-cancel": true }, "Cancel");
    const update = () => {
      clear(preview, renderMarkdown(input.value));
      const bytes = new TextEncoder().encode(input.value).length;
      size.textContent = `${bytes.toLocaleString()} / ${NOTES_MAX_BYTES.toLocaleString()} bytes`;
      size.className = bytes > NOTES_MAX_BYTES ? "error" : "muted";
    };
    const stop = () => {
      editing = false;
      message.textContent = "";
      renderView();
    };
    const submit = async () => {
      saveBtn.disabled = true;
      try {
        stored = await save(input.value);
        stop();
      } catch (err) {
        message.textContent = errorText(err);
      } finally {
        saveBtn.disabled = false;
      }
    };
    input.addEventListener("input", update);
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) void submit();
      else if (e.key === "Escape") stop();
    });
    saveBtn.addEventListener("click", () => void submit());
    cancelBtn.addEventListener("click", stop);
    clear(
      body,
      h("div", { class: "notes-editor" }, input, h("div", null, h("div", { class: "muted" }, "Preview"), preview)),
      h("div", { class: "row" }, saveBtn, cancelBtn, size, h("span", { class: "muted" }, "Markdown · Ctrl+Enter saves · Esc cancels")),
    );
    update();
    input.focus();
  }

  editBtn.addEventListener("click", startEditing);
  renderView();
  return {
    el,
    show(data: Annotated): void {
      stored = { notes: data.notes ?? "", notes_updated_at: data.notes_updated_at ?? null, notes_updated_by: data.notes_updated_by ?? null };
      if (!editing) renderView();
    },
  };
}

export interface TagsEditor {
  readonly el: HTMLElement;
  show(tags: string[]): void;
}

/** A trial's tags as chips: × removes one, the input adds (commas separate several). */
/** A change to the tags as the server has them when it lands (so that two people tagging
 * one trial at once both keep theirs); `save` answers the tags after it. */
export type TagsChange = { add_tags?: string[]; remove_tags?: string[] };

export function createTagsEditor(save: (change: TagsChange) => Promise<string[]>): TagsEditor {
  let tags: string[] = [];
  const chips = h("span", { class: "tag-chips", id: "trial-tags" });
  const input = h("input", { type: "text", id: "tag-input", placeholder: "add a tag", "aria-label": "add a tag", maxlength: 200 });
  const message = h("span", { class: "error", role: "alert" });
  const apply = async (change: TagsChange) => {
    try {
      tags = await save(change);
      message.textContent = "";
      render();
      return true;
    } catch (err) {
      message.textContent = errorText(err);
      return false;
    }
  };
  const add = async () => {
    const fresh = input.value.split(",").map((t) => t.trim()).filter(Boolean);
    if (!fresh.length) return;
    if (await apply({ add_tags: fresh })) input.value = "";
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      void add();
    }
  });
  const addBtn = h("button", { type: "button", class: "small", id: "tag-add", onclick: () => void add() }, "Add");

  function render(): void {
    clear(
      chips,
      tags.length
        ? tags.map((t) =>
            h(
              "span",
              { class: "tag-chip", "data-tag": t },
              t,
              h("button", { type: "button", class: "tag-remove", "aria-label": `remove tag ${t}`, title: `remove ${t}`, onclick: () => void apply({ remove_tags: [t] }) }, "×"),
            ),
          )
        : h("span", { class: "muted" }, "no tags"),
    );
  }
  render();
  return {
    el: h("div", { class: "row tags-row" }, h("strong", null, "Tags"), chips, input, addBtn, message),
    show(next: string[]): void {
      tags = [...next];
      render();
    },
  };
}

/** A trials-table cell: the trial's tags, and ✎ when it has a note (its start as a tooltip). */
export function tagsCell(tags: string[] | undefined, excerpt: string | null | undefined): HTMLTableCellElement {
  return h(
    "td",
    { class: "tags-cell" },
    excerpt ? h("span", { class: "has-notes", title: excerpt, "aria-label": "has notes" }, "✎ ") : null,
    ...(tags ?? []).map((t) => h("span", { class: "tag-chip small", "data-tag": t }, t)),
  );
}
