import "./style.css";
import { getToken, setToken } from "./api/client";
import { clear, h } from "./dom";
import { comparePage } from "./pages/compare";
import { compareStudiesPage } from "./pages/compare-studies";
import { createPage } from "./pages/create";
import { populationPage } from "./pages/population";
import { projectsPage } from "./pages/projects";
import { studiesPage } from "./pages/studies";
import { studyPage } from "./pages/study/index";
import { trialPage } from "./pages/trial";
import { webhooksPage } from "./pages/webhooks";

export type Dispose = () => void;
type Page = (root: HTMLElement, params: URLSearchParams, ...ids: number[]) => Dispose | void;

const routes: [RegExp, Page][] = [
  [/^\/$/, studiesPage],
  [/^\/studies\/new$/, createPage],
  [/^\/projects$/, projectsPage],
  [/^\/studies\/(\d+)$/, studyPage],
  [/^\/studies\/(\d+)\/population$/, populationPage],
  [/^\/studies\/(\d+)\/compare$/, comparePage],
  [/^\/compare$/, compareStudiesPage],
  [/^\/trials\/(\d+)$/, trialPage],
  [/^\/webhooks$/, webhooksPage],
];

const root = document.getElementById("app") as HTMLElement;
let dispose: Dispose | void;

export function navigate(path: string): void {
  history.pushState(null, "", path);
  render();
}

function render(): void {
  if (dispose) dispose();
  dispose = undefined;
  clear(root);
  const path = location.pathname.replace(/\/+$/, "") || "/";
  for (const [pattern, page] of routes) {
    const match = pattern.exec(path);
    if (match) {
      dispose = page(root, new URLSearchParams(location.search), ...match.slice(1).map(Number));
      return;
    }
  }
  root.append(h("section", { class: "card" }, h("h1", null, "Not found"), h("p", null, "No page at ", path)));
}

document.addEventListener("click", (e) => {
  const a = (e.target as HTMLElement).closest("a[data-link]") as HTMLAnchorElement | null;
  if (!a || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  e.preventDefault();
  navigate(a.getAttribute("href") ?? "/");
});
window.addEventListener("popstate", render);

// When the server wants a token, ask for one; it is kept in localStorage.
window.addEventListener("tunelab:unauthorized", () => {
  if (document.getElementById("signin")) return;
  const input = h("input", { type: "password", placeholder: "API token", "aria-label": "API token" });
  const bar = h(
    "form",
    {
      id: "signin",
      class: "signin",
      onsubmit: (e: Event) => {
        e.preventDefault();
        setToken(input.value.trim() || null);
        bar.remove();
        render();
      },
    },
    getToken() ? "The token was refused. " : "This server needs an API token. ",
    input,
    h("button", { type: "submit" }, "Sign in"),
  );
  document.body.prepend(bar);
});

render();
