"""A real HTTP receiver for webhook tests: a thread serving 127.0.0.1, recording each
POST (headers, body, arrival time) and answering with the status it is told."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Heard:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def event(self) -> str:
        return self.headers.get("Tunelab-Event", "")


@dataclass
class Receiver:
    """`statuses`: answers to give in turn (then `status`); `delay_s`: a slow receiver."""

    status: int = 204
    statuses: list[int] = field(default_factory=list)
    delay_s: float = 0.0
    port: int = 0
    heard: list[Heard] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else receiver.status
                heard = Heard(self.path, dict(self.headers.items()), body, time.monotonic())
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                with receiver._arrived:
                    receiver.heard.append(heard)
                    receiver._arrived.notify_all()

            def log_message(self, *args: Any) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(
        self, count: int = 1, event: str | None = None, timeout: float = 5.0
    ) -> list[Heard]:
        """The POSTs heard (of `event`, if given) once there are `count`; fails after timeout."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                found = [h for h in self.heard if event is None or h.event == event]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                assert left > 0, f"heard {[h.event for h in self.heard]}, wanted {count} {event}"
                self._arrived.wait(left)
