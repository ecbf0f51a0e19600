// The study page: a header (name, state, actions, key figures), the charts, the trials
// table, and the live changes that keep them current, one module each.
import { api } from "../../api/client";
import type { LiveStream } from "../../api/live";
import { loadPlotly } from "../../charts";
import { h } from "../../dom";
import { navigate } from "../../main";
import { createChartsPanel } from "./charts-panel";
import { followStudy } from "./events";
import { createHeader } from "./header";
import { createNotesPanel } from "./notes";
import { createTrialsTable } from "./trials-table";

export function studyPage(root: HTMLElement, _params: URLSearchParams, id: number): () => void {
  const charts = createChartsPanel(id, (trialId) => navigate(`/trials/${trialId}`));
  const header = createHeader(id, (study) => {
    charts.setStudy(study);
    table.setStudy(study);
    notes.show(study);
  });
  const table = createTrialsTable(id);
  // The study's Markdown notes (./notes.ts).
  const notes = createNotesPanel("study-notes", (text) => api.updateStudy(id, { notes: text }));
  root.append(header.card, h("div", { class: "figures-grid" }, header.figures), notes.el, charts.el, table.el);

  let stream: LiveStream | null = null;
  let closed = false;
  void (async () => {
    void loadPlotly(); // downloads while the study and its figures are requested
    const figuresDrawn = charts.drawAll();
    const study = await header.loadStudy();
    if (!study) return;
    table.sortBestFirst(study.objective.direction);
    void table.load();
    // The key figures read every trial's times: after the first chart, not competing
    // with it for the server.
    await charts.firstShown;
    void header.loadSummary();
    await figuresDrawn;
    document.body.dataset.allCharts = String(Date.now());
    if (!closed) stream = followStudy(id, { header, charts, table });
  })();

  return () => {
    closed = true;
    stream?.close();
    charts.destroy();
  };
}
