"""A running trial's reports through an API outage: the part of the runner that sends
metric batches and log chunks, spools them (worker/spool.py) while the API cannot be
reached, delivers them in order when it answers again, and ends a run the API says is
superseded (its trial was re-queued or failed meanwhile: app/trials/fencing.py)."""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunelab.transport import TunelabError, Unreachable
from worker.api import ApiClient, superseded
from worker.spool import Leftover, Spool, leftovers

if TYPE_CHECKING:
    from worker.runner import RunnerConfig

log = logging.getLogger("tunelab.runner")

# Answers that mean the API is there but cannot act now: 503 (its database is down or
# restarting: it rolled the request back) and a proxy's 502 / 504 / 429. A report so
# answered, once the client's own retries ran out, is spooled like one that found no API;
# dropping it would lose the points of a database outage.
_AWAY_STATUSES = frozenset({429, 502, 503, 504})


def away(exc: TunelabError) -> bool:
    """The API cannot take reports now (unreachable or unavailable); try again later."""
    return isinstance(exc, Unreachable) or exc.status_code in _AWAY_STATUSES


class Delivery:
    """Sending a run's reports, and holding them while the API is away. The runner
    (worker/runner.py) supplies the process, its ending (`_end`) and its decisions."""

    pending: list[tuple[str, float, float]]
    pending_since: float | None
    ending: str | None
    ending_state: str
    stop: threading.Event

    def __init__(self, client: ApiClient, config: RunnerConfig, trial_id: int, attempt: int):
        self.client = client
        self.config = config
        self.trial_id = trial_id
        # The run's fencing token: the trial's retries when it was handed out.
        self.attempt = attempt
        # Reports of the running trial wait briefly, then are spooled; the spool's
        # delivery tries once per probe.
        self.live = client.retrying_for(config.report_retry_s)
        self.probe_client = client.retrying_for(0.0)
        self.spool: Spool | None = None
        self.offline_since: float | None = None
        self.next_probe = 0.0
        self.process: subprocess.Popen[bytes] | None = None

    def _end(self, process: subprocess.Popen[bytes], reason: str, state: str, grace: bool) -> None:
        raise NotImplementedError

    def _on_decision(self, process: subprocess.Popen[bytes], answer: dict[str, Any]) -> None:
        raise NotImplementedError

    def _send(self, kind: str, payload: dict[str, Any], client: ApiClient) -> dict[str, Any]:
        if kind == "metrics":
            points = [(str(n), float(st), float(v)) for n, st, v in payload["points"]]
            return client.report(self.trial_id, points, attempt=self.attempt)
        client.append_log(self.trial_id, payload["offset"], payload["text"], attempt=self.attempt)
        return {}

    def _deliver(self, kind: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        """Sends a report now, or spools it behind the earlier ones while the API is away.
        The answer ({} when spooled); None when the API refused it."""
        if self.ending_state == "superseded":
            return None
        if self.offline_since is None:
            try:
                return self._send(kind, payload, self.live)
            except TunelabError as exc:
                if not away(exc):
                    self._refused(kind, exc)
                    return None
                self._go_offline(exc)
        assert self.spool is not None
        if not self.spool.put(kind, payload):
            raise self._give_up(
                f"its reports reached the spool's bound of {self.config.spool_max_bytes} bytes "
                "(TUNELAB_SPOOL_MAX_BYTES)"
            )
        return {}

    def _refused(self, kind: str, exc: TunelabError) -> None:
        if superseded(exc):
            self._supersede(exc)
        else:
            log.warning("trial %s: %s rejected: %s", self.trial_id, kind, exc)

    def _go_offline(self, exc: TunelabError) -> None:
        if self.offline_since is not None:
            return
        self.offline_since = time.monotonic()
        self.next_probe = self.offline_since + self.config.probe_s
        if self.spool is None:
            self.spool = Spool(
                self.config.spool_dir,
                self.trial_id,
                self.config.spool_max_bytes,
                attempt=self.attempt,
                api_url=self.config.api_url,
            )
        log.warning(
            "trial %s: the API is unreachable (%s); the trial goes on and its reports are kept "
            "in %s until the API answers",
            self.trial_id,
            exc.detail,
            self.spool.path,
        )

    def _give_up(self, why: str) -> Unreachable:
        away = time.monotonic() - (self.offline_since or time.monotonic())
        message = (
            f"trial {self.trial_id}: the API has been unreachable for {away:.0f} s and {why}; "
            "the run is given up"
        )
        log.error(message)
        return Unreachable(self.config.api_url, message)

    def _probe(self, process: subprocess.Popen[bytes] | None) -> bool:
        """Delivers the spool in order if the API answers. True when it is back."""
        assert self.offline_since is not None and self.spool is not None
        self.next_probe = time.monotonic() + self.config.probe_s
        delivered = 0
        try:
            if not len(self.spool):
                answer = self.probe_client.heartbeat(self.trial_id, attempt=self.attempt)
                if process is not None:
                    self._on_decision(process, answer)
            while (item := self.spool.peek()) is not None:
                try:
                    answer = self._send(*item, self.probe_client)
                except TunelabError as exc:
                    if away(exc):
                        raise
                    self._refused(item[0], exc)
                    if self.ending_state == "superseded":
                        return True
                    answer = {}
                self.spool.pop()
                delivered += 1
                if process is not None and answer:
                    self._on_decision(process, answer)
        except TunelabError as exc:
            if away(exc):
                if time.monotonic() - self.offline_since > self.config.outage_limit_s:
                    raise self._give_up(
                        f"passed the outage limit of {self.config.outage_limit_s:g} s "
                        "(TUNELAB_OUTAGE_LIMIT_S)"
                    ) from None
                return False
            # The heartbeat was refused: the trial's fate is known.
            if superseded(exc):
                self._supersede(exc)
            elif exc.status_code == 404 and process is not None:
                self._end(process, "the trial no longer exists", "cancelled", grace=False)
        log.info(
            "trial %s: the API answers again after %.0f s; %d spooled reports delivered",
            self.trial_id,
            time.monotonic() - self.offline_since,
            delivered,
        )
        self.offline_since = None
        return True

    def _settle(self) -> None:
        """Waits until the spool is delivered (the API is back) or the run is given up."""
        running = self.process if self.process and self.process.poll() is None else None
        while self.offline_since is not None and not self._probe(running):
            if self.stop.is_set():
                raise self._give_up("the worker is shutting down")
            time.sleep(self.config.probe_s)

    def _told(self, call: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """A call on the trial's end, sent after the spool and again until the API answers."""
        while True:
            self._settle()
            try:
                return call()
            except TunelabError as exc:
                if not away(exc):
                    raise
                self._go_offline(exc)

    def _supersede(self, exc: TunelabError) -> None:
        """The trial was re-queued or failed while this run went on (its worker was taken
        for lost): another run owns it now, so this one ends at once and says nothing more."""
        if self.ending_state == "superseded":
            return
        log.warning("trial %s: this run is over: %s", self.trial_id, exc.detail)
        self.pending.clear()
        self.pending_since = None
        if self.spool is not None:
            self.spool.discard()
            self.spool = None
        self.offline_since = None
        if self.process is not None:
            self._end(self.process, exc.detail, "superseded", grace=False)
        else:
            self.ending, self.ending_state = exc.detail, "superseded"


# Reports spooled by an earlier worker process ------------------------------------------


def deliver_leftovers(folder: Path, stop: threading.Event, retry_s: float = 2.0) -> int:
    """Delivers the spool files runners of earlier worker processes on this host left
    (they were stopped or killed while the API was away), each in order, with its run's
    attempt: the API keeps them while that run is still the trial's, and refuses them
    (fencing) once the trial was re-queued and its points belong to the next run. Tries
    again every `retry_s` while the API is away, until all are delivered or `stop` is set.
    Returns the number of files delivered."""
    delivered = 0
    while not stop.is_set():
        away_from = 0
        for leftover in leftovers(folder):
            outcome = _deliver_leftover(leftover)
            if outcome == "away":
                away_from += 1
                leftover.release()
                continue
            leftover.remove()
            delivered += outcome == "delivered"
        if not away_from:
            return delivered
        stop.wait(retry_s)
    return delivered


def _deliver_leftover(leftover: Leftover) -> str:
    """ "delivered", "refused" (the run is over) or "away" (the API cannot take it now)."""
    url = os.environ.get("TUNELAB_API_URL") or leftover.api_url
    if not url:
        log.warning("%s names no API; left alone", leftover.path)
        return "away"
    client = ApiClient(url, retry_for_s=0.0)
    trial_id, attempt = leftover.trial_id, leftover.attempt
    try:
        for kind, payload in leftover.items:
            try:
                if kind == "metrics":
                    points = [(str(n), float(st), float(v)) for n, st, v in payload["points"]]
                    client.report(trial_id, points, attempt=attempt)
                else:
                    client.append_log(trial_id, payload["offset"], payload["text"], attempt=attempt)
            except TunelabError as exc:
                if away(exc):
                    return "away"
                if superseded(exc) or exc.status_code == 404:
                    log.warning(
                        "trial %s: reports left by an earlier worker process are refused: %s",
                        trial_id,
                        exc.detail,
                    )
                    return "refused"
                log.warning("trial %s: a left %s report is rejected: %s", trial_id, kind, exc)
    finally:
        client.close()
    log.info(
        "trial %s: %d reports left by an earlier worker process delivered",
        trial_id,
        len(leftover.items),
    )
    return "delivered"
