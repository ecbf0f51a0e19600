// The projects page (/projects): the caller's projects with its role in each; for an
// admin (a token with the admin role of its own), creating and deleting projects and
// granting tokens a role in one. Also the project selector of the studies list.
import { ApiError, request } from "../api/client";
import { clear, h, link } from "../dom";

// Written by hand: app/projects/schemas.py and app/auth/schemas.py.
export interface ProjectRead {
  id: number;
  name: string;
  description: string;
  role: string | null;
  n_studies: number;
}
interface MemberRead {
  project_id: number;
  token_id: number;
  token_name: string;
  role: string;
}
interface TokenRead {
  id: number;
  name: string;
  role: string;
  prefix: string;
}

const ROLES = ["viewer", "member", "admin"];

export const projectsApi = {
  list: () => request<{ items: ProjectRead[] }>("GET", "/projects"),
  create: (name: string, description: string) => request<ProjectRead>("POST", "/projects", { name, description }),
  remove: (name: string) => request<void>("DELETE", `/projects/${encodeURIComponent(name)}`),
  members: (name: string) => request<{ items: MemberRead[] }>("GET", `/projects/${encodeURIComponent(name)}/members`),
  grant: (name: string, tokenId: number, role: string) =>
    request<MemberRead>("PUT", `/projects/${encodeURIComponent(name)}/members/${tokenId}`, { role }),
  revoke: (name: string, tokenId: number) =>
    request<void>("DELETE", `/projects/${encodeURIComponent(name)}/members/${tokenId}`),
  me: () => request<TokenRead>("GET", "/auth/me"),
  tokens: () => request<{ items: TokenRead[] }>("GET", "/tokens"),
};

function message(err: unknown): string {
  return err instanceof ApiError ? `${err.detail}${err.field ? ` (${err.field})` : ""}` : String(err);
}

/** A <select> of the caller's projects for the studies list; "" is every project. */
export function projectSelect(selected: string, onChange: (project: string) => void): HTMLSelectElement {
  const select = h(
    "select",
    { id: "project-filter", "aria-label": "Project", onchange: () => onChange(select.value) },
    h("option", { value: "" }, "All projects"),
  );
  projectsApi.list().then(
    (list) => {
      for (const p of list.items) select.append(h("option", { value: p.name }, p.name));
      select.value = selected;
    },
    () => select.remove(),
  );
  return select;
}

export function projectsPage(root: HTMLElement): void {
  const error = h("p", { class: "error", role: "alert" });
  const body = h("tbody");
  const admin = h("div");
  root.append(
    h(
      "section",
      { class: "card" },
      h("h1", null, "Projects"),
      h("p", { class: "muted" }, "Each study belongs to a project; a token sees only the projects it has a role in."),
      error,
      h(
        "table",
        { class: "table", id: "projects" },
        h("thead", null, h("tr", null, ...["Name", "Your role", "Studies", "Description", ""].map((c) => h("th", null, c)))),
        body,
      ),
      admin,
    ),
  );
  let isAdmin = false;

  async function load(): Promise<void> {
    try {
      const [list, me] = await Promise.all([projectsApi.list(), projectsApi.me()]);
      isAdmin = me.role === "admin";
      error.textContent = "";
      clear(
        body,
        list.items.map((p) =>
          h(
            "tr",
            { "data-project": p.name },
            h("td", null, link(`/?project=${encodeURIComponent(p.name)}`, p.name)),
            h("td", null, p.role ?? ""),
            h("td", { class: "num" }, p.n_studies),
            h("td", { class: "muted" }, p.description),
            h(
              "td",
              null,
              isAdmin ? h("button", { type: "button", onclick: () => void showMembers(p.name) }, "Members") : null,
              isAdmin && p.name !== "default"
                ? h("button", { type: "button", class: "danger", onclick: () => void remove(p.name) }, "Delete")
                : null,
            ),
          ),
        ),
      );
      if (isAdmin && !admin.firstChild) admin.append(createForm());
    } catch (err) {
      error.textContent = message(err);
    }
  }

  async function remove(name: string): Promise<void> {
    if (!confirm(`Delete project ${name}?`)) return;
    try {
      await projectsApi.remove(name);
      await load();
    } catch (err) {
      error.textContent = message(err);
    }
  }

  function createForm(): HTMLElement {
    const name = h("input", { name: "name", placeholder: "name", required: true, "aria-label": "Project name" });
    const description = h("input", { name: "description", placeholder: "description", "aria-label": "Description" });
    return h(
      "form",
      {
        class: "row",
        id: "project-create",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          try {
            await projectsApi.create(name.value.trim(), description.value.trim());
            name.value = description.value = "";
            await load();
          } catch (err) {
            error.textContent = message(err);
          }
        },
      },
      name,
      description,
      h("button", { type: "submit" }, "Create project"),
    );
  }

  const members = h("div", { id: "members" });
  root.append(members);

  async function showMembers(project: string): Promise<void> {
    try {
      const [list, tokens] = await Promise.all([projectsApi.members(project), projectsApi.tokens()]);
      const token = h("select", { name: "token", "aria-label": "Token" },
        ...tokens.items.map((t) => h("option", { value: t.id }, `${t.id} ${t.name || t.prefix} (${t.role})`)));
      const role = h("select", { name: "role", "aria-label": "Role" }, ...ROLES.map((r) => h("option", { value: r }, r)));
      clear(
        members,
        h(
          "section",
          { class: "card" },
          h("h2", null, `Members of ${project}`),
          h(
            "table",
            { class: "table" },
            h("thead", null, h("tr", null, ...["Token", "Role", ""].map((c) => h("th", null, c)))),
            h(
              "tbody",
              null,
              list.items.map((m) =>
                h(
                  "tr",
                  { "data-token": m.token_id },
                  h("td", null, `${m.token_id} ${m.token_name}`),
                  h("td", null, m.role),
                  h("td", null, h("button", {
                    type: "button",
                    onclick: async () => {
                      try {
                        await projectsApi.revoke(project, m.token_id);
                        await showMembers(project);
                      } catch (err) {
                        error.textContent = message(err);
                      }
                    },
                  }, "Revoke")),
                ),
              ),
            ),
          ),
          h(
            "form",
            {
              class: "row",
              id: "member-grant",
              onsubmit: async (e: Event) => {
                e.preventDefault();
                try {
                  await projectsApi.grant(project, Number(token.value), role.value);
                  await showMembers(project);
                  await load();
                } catch (err) {
                  error.textContent = message(err);
                }
              },
            },
            token,
            role,
            h("button", { type: "submit" }, "Grant"),
          ),
        ),
      );
    } catch (err) {
      error.textContent = message(err);
    }
  }

  void load();
}
