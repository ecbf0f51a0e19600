"""Worker liveness: a lost worker's trials are recovered in seconds, not after the
per-trial heartbeat timeout.

Each Celery worker keeps one short-lived Redis key per slot (`Beacon`), refreshed every
BEAT_S seconds with an expiry of EXPIRY_S, and records its slot names in a set. The API's
sweeper (`LivenessWatch.sweep`, run by the leader beside `reap_stale`) looks at the
running trials whose worker is such a slot: a slot whose key has expired belongs to a
worker that died (SIGKILL, a lost node) or lost Redis with the rest of the network, and
its trials are failed or re-queued at once. Noticed within EXPIRY_S plus one sweep.

Trials of other runners (a script using the SDK, a worker of an older version) have no
key and are left to the heartbeat timeout. After a Redis restart nothing is taken for
lost until the workers had time to beat again; they write set and key in one transaction.

The in-process executor needs no key: it lives in the API process, its trials die with it,
and the executor settles them when it starts again (`InProcessExecutor.start`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy.orm import Session

from app.core.redis_clients import fail_fast
from app.engine.base import TrialState
from app.studies import service as studies
from app.trials import service as trials_service
from app.trials.repository import TrialRepository
from app.webhooks import outbox

log = logging.getLogger("tunelab.liveness")

# A slot's key lives EXPIRY_S after its last refresh; the worker refreshes it every BEAT_S,
# so two refreshes in a row may fail (a Redis blip) before the slot is taken for lost.
BEAT_S = 2.0
EXPIRY_S = 8.0
KNOWN_SLOTS = "tunelab:liveness:slots"
_KEY_PREFIX = "tunelab:liveness:alive:"


def alive_key(slot: str) -> str:
    return f"{_KEY_PREFIX}{slot}"


class Beacon:
    """Keeps a worker's slots marked alive from a background thread."""

    def __init__(
        self,
        redis_url: str,
        slots: Sequence[str],
        beat_s: float = BEAT_S,
        expiry_s: float = EXPIRY_S,
    ) -> None:
        self.redis: Any = fail_fast(redis_url)
        self.slots = list(slots)
        self.beat_s = beat_s
        self.expiry_s = expiry_s
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True, name="tunelab-liveness")

    def beat(self) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.sadd(KNOWN_SLOTS, *self.slots)
        for slot in self.slots:
            pipe.set(alive_key(slot), "1", px=int(self.expiry_s * 1000))
        pipe.execute()

    def _loop(self) -> None:
        warned = False
        while not self.stopped.is_set():
            try:
                self.beat()
                warned = False
            except Exception as exc:  # Redis away: try again next beat, never die
                if not warned:
                    log.warning("liveness: Redis did not answer (%s); retrying", exc)
                    warned = True
            self.stopped.wait(self.beat_s)

    def start(self) -> Beacon:
        try:
            self.beat()  # before the first task: a trial never runs on an unmarked slot
        except Exception as exc:
            log.warning("liveness: first beat failed (%s)", exc)
        self.thread.start()
        return self

    def stop(self) -> None:
        """Ends the beat and drops the keys: trials a stopped worker could not settle
        itself are recovered at the next sweep."""
        self.stopped.set()
        if self.thread.is_alive():
            self.thread.join(timeout=self.beat_s + 1)
        try:
            self.redis.delete(*(alive_key(slot) for slot in self.slots))
        except Exception as exc:
            log.warning("liveness: could not drop the slots' keys (%s)", exc)


class LivenessWatch:
    """The API side: which workers holding running trials have stopped beating."""

    def __init__(self, redis_url: str) -> None:
        self.redis: Any = fail_fast(redis_url)

    def lost(self, slots: Iterable[str]) -> set[str]:
        """Slots that have beaten once (known) and whose key has since expired."""
        names = sorted(set(slots))
        if not names:
            return set()
        # A Redis that has just restarted may have loaded the set from its dump while the
        # keys expired during the restart: give the workers time to beat again first.
        if int(self.redis.info("server")["uptime_in_seconds"]) < EXPIRY_S + BEAT_S:
            return set()
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.sismember(KNOWN_SLOTS, name)
            pipe.exists(alive_key(name))
        answers = pipe.execute()
        return {
            name
            for name, known, alive in zip(names, answers[0::2], answers[1::2], strict=True)
            if known and not alive
        }

    def sweep(self, session: Session) -> int:
        """Fails (or re-queues) running trials whose worker is gone. Returns how many.
        While Redis does not answer nothing is taken for lost."""
        repo = TrialRepository(session)
        running = repo.running_on("")
        try:
            gone = self.lost(t.worker for t in running if t.worker)
        except Exception as exc:
            log.warning("liveness sweep skipped: Redis did not answer (%s)", exc)
            return 0
        recovered = 0
        lost: list[outbox.LostTrial] = []
        for trial in running:
            if trial.worker not in gone:
                continue
            study = studies.get_study_for_update(session, trial.study_id)
            locked = repo.get_for_update(trial.id)
            if (
                locked is None
                or locked.state != TrialState.RUNNING
                or locked.worker != trial.worker
            ):
                continue
            reason = f"worker {trial.worker} was lost (no sign of life for {EXPIRY_S:g} s)"
            locked.error = reason
            worker = locked.worker
            trials_service.fail_or_retry(session, study, locked, "tunelab", reason)
            lost.append(outbox.LostTrial(worker, locked, study, reason))
            recovered += 1
        # Webhooks: one "worker.lost" per lost worker, listing its trials.
        outbox.workers_lost(session, lost)
        return recovered

    def close(self) -> None:
        self.redis.close()


def watch_for(broker_url: str) -> LivenessWatch | None:
    """The watch of a server with a broker; None for the embedded default."""
    return LivenessWatch(broker_url) if broker_url else None
