// Server-Sent Events over fetch (so the Authorization header goes along, which an
// EventSource cannot send), with reconnection.
import { API, authHeaders } from "./client";

export interface LiveChange {
  kind: string;
  data: Record<string, unknown> & { study_id: number | null };
}

export interface LiveStream {
  close(): void;
}

const statusDot = () => document.getElementById("live-status");

function setStatus(ok: boolean): void {
  const dot = statusDot();
  if (!dot) return;
  dot.classList.toggle("on", ok);
  dot.title = ok ? "live updates connected" : "live updates reconnecting";
}

/** Calls `onChange` for every change; `onOpen` after each (re)connection, when the
 * caller should reload what it may have missed. */
export function subscribe(
  path: string,
  onChange: (change: LiveChange) => void,
  onOpen: (reconnected: boolean) => void = () => {},
): LiveStream {
  const controller = new AbortController();
  let closed = false;
  let connections = 0;

  async function run(): Promise<void> {
    while (!closed) {
      try {
        const response = await fetch(API + path, {
          headers: { Accept: "text/event-stream", ...authHeaders() },
          signal: controller.signal,
          cache: "no-store",
        });
        if (!response.ok || !response.body) throw new Error(`status ${response.status}`);
        setStatus(true);
        onOpen(connections++ > 0);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            dispatch(frame, onChange);
          }
        }
      } catch (err) {
        if (closed) return;
      }
      setStatus(false);
      if (!closed) await new Promise((r) => setTimeout(r, 1500));
    }
  }

  void run();
  return {
    close() {
      closed = true;
      controller.abort();
    },
  };
}

function dispatch(frame: string, onChange: (change: LiveChange) => void): void {
  let kind = "message";
  const data: string[] = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
  }
  if (!data.length || kind === "ready") return;
  try {
    onChange({ kind, data: JSON.parse(data.join("\n")) });
  } catch {
    /* a malformed frame is skipped */
  }
}
