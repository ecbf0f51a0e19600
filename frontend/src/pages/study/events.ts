// Routes the study's live changes (Server-Sent Events) to the panels that show them.
import { subscribe, type LiveChange, type LiveStream } from "../../api/live";
import { throttle } from "../../charts";
import type { ChartsPanel } from "./charts-panel";
import type { Header } from "./header";
import type { TrialsTable } from "./trials-table";

export interface Panels {
  header: Header;
  charts: ChartsPanel;
  table: TrialsTable;
}

export function followStudy(studyId: number, panels: Panels): LiveStream {
  const { header, charts, table } = panels;
  const refreshHead = throttle(async () => { await header.loadStudy(); await header.loadSummary(); }, 1000);
  const refreshTable = throttle(table.load, 1500);

  function onChange(change: LiveChange): void {
    const data = change.data;
    switch (change.kind) {
      case "metrics":
        charts.onMetrics(Number(data["trial_id"]));
        break;
      case "trial":
        // Notes or tags changed (PATCH /trials/{id}): only the table shows them.
        if (data["annotated"]) {
          refreshTable();
          break;
        }
        refreshHead();
        refreshTable();
        charts.onTrial(Number(data["id"]), String(data["state"] ?? ""));
        break;
      case "study":
        refreshHead();
        break;
      case "resync":
        // This connection fell behind: what it shows may miss anything.
        refreshHead();
        refreshTable();
        void charts.drawAll();
        break;
    }
  }

  return subscribe(`/studies/${studyId}/events`, onChange, (reconnected) => {
    if (reconnected) {
      onChange({ kind: "resync", data: { study_id: studyId } });
      return;
    }
    // Catch up with what changed while the charts loaded, from the cursors.
    refreshHead();
    refreshTable();
    charts.catchUp();
  });
}
