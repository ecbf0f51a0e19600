"""Runs trials inside the API process (the embedded default, no broker): one thread per
slot, up to max_parallel_trials per study, each using the same runner as a worker."""

from __future__ import annotations

import socket
import threading
from collections import defaultdict

from app.auth.service import internal_secret
from app.db.session import Database
from app.executor.demand import Demand, DemandLoop, log
from app.settings import Settings
from app.studies import service as studies
from app.trials import service as trials_service
from app.trials.repository import TrialRepository
from worker.api import ApiClient
from worker.runner import RunnerConfig, Slot, run_next


class InProcessExecutor(DemandLoop):
    sweep_s = 1.0

    def __init__(self, settings: Settings, database: Database) -> None:
        super().__init__(database)
        self.config = RunnerConfig(
            api_url=settings.api_url, checkpoint_root=settings.data_dir / "checkpoints"
        )
        # Slot names carry host and port: a restarted server recognises its own trials,
        # and a second server on the same host leaves them alone.
        self.prefix = f"{socket.gethostname()}:{settings.port}:inprocess-"
        self.lock = threading.Lock()
        self.active: dict[int, int] = defaultdict(int)
        self.threads: set[threading.Thread] = set()
        self.shutdown = threading.Event()
        self._counter = 0

    def fill(self, wanted: list[Demand]) -> None:
        with self.lock:
            for demand in wanted:
                # Threads of this executor that run a trial are among the running trials;
                # those still asking are not, so both bounds are needed.
                active = self.active[demand.study_id]
                for _ in range(min(demand.open_slots, demand.max_parallel - active)):
                    self._counter += 1
                    self.active[demand.study_id] += 1
                    slot = Slot(f"{self.prefix}{self._counter}")
                    thread = threading.Thread(
                        target=self._slot, args=(demand.study_id, slot), daemon=True, name=slot.name
                    )
                    self.threads.add(thread)
                    thread.start()

    def _slot(self, study_id: int, slot: Slot) -> None:
        """Runs trial after trial until the study has none to hand out to this slot."""
        try:
            # This process's own member token: the API may require tokens.
            with ApiClient(
                self.config.api_url, token=internal_secret(), give_up=self.shutdown
            ) as client:
                study = client.get_study(study_id)
                while not self.shutdown.is_set():
                    outcome = run_next(
                        client, study_id, slot, self.config, stop=self.shutdown, study=study
                    )
                    if outcome is None:
                        break
                    log.info("trial %s: %s (%s)", outcome.trial_id, outcome.state, outcome.reason)
        except Exception:
            if self.shutdown.is_set():  # the API stopped listening first; stop() settles it
                log.info("slot %s ended with the server", slot.name)
            else:
                log.exception("slot %s of study %s failed", slot.name, study_id)
        finally:
            with self.lock:
                self.active[study_id] -= 1
                self.threads.discard(threading.current_thread())
            self.wake.set()

    def start(self) -> None:
        self._recover("the server stopped while the trial ran")
        super().start()

    def stop(self) -> None:
        super().stop()
        self.shutdown.set()
        with self.lock:
            threads = list(self.threads)
        for thread in threads:
            thread.join(timeout=15)
        # The runners could not tell the API (it no longer listens): settle directly.
        self._recover("the server shut down while the trial ran")

    def _recover(self, reason: str) -> None:
        """Re-queues (or fails) trials this host's in-process slots left running: their
        processes ended with the server, so there is no heartbeat to wait for."""
        try:
            with self.database.session() as session:
                for trial in TrialRepository(session).running_on(self.prefix):
                    study = studies.get_study_for_update(session, trial.study_id)
                    trials_service.fail_or_retry(session, study, trial, "tunelab", reason)
        except Exception:  # recovery is best effort; the heartbeat sweep is the backstop
            log.exception("could not settle the trials of in-process slots")
