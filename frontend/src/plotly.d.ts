// The few Plotly.js calls the dashboard makes; figures come as JSON from the API.
declare module "plotly.js-dist-min" {
  export interface Figure {
    data: Record<string, unknown>[];
    layout: Record<string, unknown> & { meta?: unknown };
    config?: Record<string, unknown>;
  }
  export interface PlotElement extends HTMLElement {
    data?: Record<string, unknown>[];
    layout?: Record<string, unknown>;
    on(event: "plotly_click", handler: (e: { points: { customdata?: unknown }[] }) => void): void;
    on(event: "plotly_afterplot", handler: () => void): void;
  }
  interface PlotlyStatic {
    react(el: HTMLElement, data: unknown[], layout?: unknown, config?: unknown): Promise<PlotElement>;
    extendTraces(
      el: HTMLElement,
      update: { x: unknown[][]; y: unknown[][]; customdata?: unknown[][] },
      indices: number[],
    ): Promise<PlotElement>;
    addTraces(el: HTMLElement, traces: Record<string, unknown>[]): Promise<PlotElement>;
    restyle(el: HTMLElement, update: Record<string, unknown>, indices: number[]): Promise<PlotElement>;
    purge(el: HTMLElement): void;
    Plots: { resize(el: HTMLElement): void };
  }
  const Plotly: PlotlyStatic;
  export default Plotly;
}
