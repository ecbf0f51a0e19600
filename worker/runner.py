"""Runs one trial's process: the code path shared by Celery workers and `tunelab serve`.

The runner launches the study's command with the trial's hyperparameters, tails stdout
and stderr line by line, turns lines into metric points with the study's regexes, sends
them in small batches, ships the console output, and acts on the API's decisions: stop
and cancel end the process (SIGTERM, a grace period, SIGKILL), pause sends SIGTERM so the
script can checkpoint. Between batches a heartbeat keeps the trial alive and brings back
decisions made elsewhere (a cancel, a stopped study) within a second.

When the API cannot be reached the trial keeps running: its metric batches and log
chunks go to a bounded spool on local disk (worker/spool.py) and are delivered in order
once the API answers; the completion waits for them. The run is given up only when the
spool is full or the outage passes `outage_limit_s`. Each report carries the run's
attempt: a run whose trial was re-queued or failed meanwhile (its worker was taken for
lost) is refused, and the runner ends its process at once.
"""

from __future__ import annotations

import codecs
import contextlib
import ctypes
import logging
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tunelab.transport import TunelabError, Unreachable
from worker import checkpoints
from worker.api import GONE, ApiClient, superseded
from worker.delivery import Delivery
from worker.launch import (
    MetricParser,
    build_argv,
    build_env,
    checked_working_dir,
    checkpoint_dir,
    default_checkpoint_root,
    trial_values,
)
from worker.spool import default_max_bytes, default_spool_dir

log = logging.getLogger("tunelab.runner")

_LINE_MAX = 64 * 1024  # a longer "line" is cut; a script with no newlines cannot eat memory


@dataclass(frozen=True)
class Slot:
    """One place a trial runs: a name the API records and the GPUs it may use."""

    name: str
    gpus: tuple[str, ...] = ()

    @property
    def cuda_visible_devices(self) -> str | None:
        return ",".join(self.gpus) if self.gpus else None


@dataclass(frozen=True)
class RunnerConfig:
    api_url: str
    checkpoint_root: Path = field(default_factory=default_checkpoint_root)
    heartbeat_s: float = 1.0  # also how fast a cancel made elsewhere reaches the process
    metrics_flush_s: float = 0.2
    metrics_batch: int = 100
    log_flush_s: float = 0.5
    # Output waits this long for more before it is sent: a process that exits right after
    # its last lines ships them with its completion instead of in a request of their own.
    log_linger_s: float = 0.1
    log_chunk_bytes: int = 256 * 1024
    # A running trial's report waits this long for the API, then goes to the spool.
    report_retry_s: float = 5.0
    # While the API is away: how often delivery is tried, the most kept on disk, and how
    # long the run goes on without the API before it is given up.
    probe_s: float = 1.0
    spool_dir: Path = field(default_factory=default_spool_dir)
    spool_max_bytes: int = field(default_factory=default_max_bytes)
    outage_limit_s: float = field(
        default_factory=lambda: float(os.environ.get("TUNELAB_OUTAGE_LIMIT_S") or 3600)
    )


@dataclass
class TrialOutcome:
    trial_id: int
    state: str  # the trial's state on the server after the run
    returncode: int | None
    reason: str
    started_at: float  # wall clock, seconds
    exited_at: float
    points: int = 0


def _die_with_parent() -> None:
    # A worker killed with SIGKILL must not leave its training processes running on the GPU.
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


# setpriv (util-linux) sets the same parent-death signal and execs the command in place.
# Going through it rather than a preexec_fn lets Python spawn with vfork: forking a big
# process (the API server, with the in-process executor) copies its page tables, which
# took 10-30 ms per trial.
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def _found(program: str, path: str | None, cwd: str | None) -> bool:
    """Whether exec would find `program`, as Popen looks it up (the child's PATH, its cwd)."""
    if os.sep in program:
        candidate = Path(cwd or ".") / program
        return candidate.is_file() and os.access(candidate, os.X_OK)
    return shutil.which(program, path=path if path is not None else os.defpath) is not None


def spawn(argv: list[str], env: dict[str, str], cwd: str | None) -> subprocess.Popen[bytes]:
    """Starts a trial's process: piped output, its own process group (stop signals reach
    the script's children too) and, on Linux, SIGKILL when the worker dies."""
    preexec_fn = None
    if sys.platform.startswith("linux"):
        if _SETPRIV is not None and _found(argv[0], env.get("PATH"), cwd):
            argv = [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
        else:
            # Also the path of a command that does not exist: Popen's OSError names it.
            preexec_fn = _die_with_parent
    return subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        process_group=0,
        preexec_fn=preexec_fn,
    )


def run_next(
    client: ApiClient,
    study_id: int,
    slot: Slot,
    config: RunnerConfig,
    stop: threading.Event | None = None,
    on_asked: Callable[[], None] | None = None,
    study: dict[str, Any] | None = None,
) -> TrialOutcome | None:
    """Asks the API for this slot's trial and runs it. None: nothing to run now (or ever).

    The trial is asked for only now, when the slot is free, so that a Bayesian strategy
    suggests it from the newest results. `on_asked` runs once the API has answered.
    `study` may be a copy read before: what the runner uses of it (execution, fidelity,
    objective) never changes after creation, and the ask itself says when the study ended."""
    try:
        study = study or client.get_study(study_id)
        if not study.get("execution"):
            return None
        trial = client.ask(study_id, slot.name)
    except TunelabError as exc:
        if exc.status_code == GONE:  # the study has finished
            return None
        raise
    finally:
        if on_asked is not None:
            on_asked()
    if trial is None:
        return None
    return TrialRunner(client, study, trial, slot, config, stop).run()


class TrialRunner(Delivery):
    def __init__(
        self,
        client: ApiClient,
        study: dict[str, Any],
        trial: dict[str, Any],
        slot: Slot,
        config: RunnerConfig,
        stop: threading.Event | None = None,
    ) -> None:
        super().__init__(client, config, int(trial["id"]), int(trial.get("retries") or 0))
        self.study = study
        self.trial = trial
        self.spec: dict[str, Any] = study["execution"]
        self.slot = slot
        self.stop = stop or threading.Event()
        self.parser = MetricParser.from_spec(self.spec.get("metric_definitions") or [])
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.pending: list[tuple[str, float, float]] = []
        self.pending_since: float | None = None
        self.log_buffer = bytearray()
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.log_offset = 0
        self.log_flushed_at = time.monotonic()
        self.log_pending_since: float | None = None  # when the oldest unsent output came
        self.tail: deque[str] = deque(maxlen=30)
        self.points = 0
        # Why we are ending the process (a decision, a timeout, shutdown), once we are.
        self.ending: str | None = None
        self.ending_state = ""
        self.kill_at: float | None = None
        # (phase, monotonic time) of the trial's end, logged at DEBUG: where the time
        # between the process's exit and the slot's next trial goes.
        self.marks: list[tuple[str, float]] = []

    def _mark(self, phase: str) -> None:
        self.marks.append((phase, time.monotonic()))

    # Launch ---------------------------------------------------------------------------

    def _popen(self) -> subprocess.Popen[bytes]:
        # Population-based training: an exploiting member resumes from the donor's weights.
        copied = checkpoints.prepare(self.config.checkpoint_root, int(self.study["id"]), self.trial)
        if copied:
            self._append_log(copied.encode())
        fidelity = self.study.get("fidelity") or {}
        values = trial_values(self.trial["params"], fidelity.get("param"), self.trial.get("budget"))
        # Parameters of the space left out of this trial's params: inactive by condition.
        inactive = set(self.study.get("space") or {}) - set(values)
        argv = build_argv(self.spec["command"], self.spec.get("args", "flags"), values, inactive)
        folder = checkpoint_dir(
            self.config.checkpoint_root, int(self.study["id"]), int(self.trial["number"])
        )
        env = build_env(
            base=os.environ,
            extra=self.spec.get("env") or {},
            trial_id=self.trial_id,
            api_url=self.config.api_url,
            params=self.trial["params"],
            budget=self.trial.get("budget"),
            checkpoint_dir=folder,
            cuda_visible_devices=self.slot.cuda_visible_devices,
        )
        # The script gets its trial's own token (report, heartbeat, log, complete this
        # trial only), never the worker's.
        env.pop("TUNELAB_TOKEN", None)
        if self.trial.get("token"):
            env["TUNELAB_TOKEN"] = str(self.trial["token"])
        return spawn(argv, env, checked_working_dir(self.spec))

    def _pump(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(lambda: stream.readline(_LINE_MAX), b""):
                self.lines.put(raw)
        finally:
            self.lines.put(None)

    # The run ----------------------------------------------------------------------------

    def run(self) -> TrialOutcome:
        started = time.time()
        wanted = int(self.spec.get("gpus_per_trial") or 0)
        if wanted > len(self.slot.gpus):
            # Route such studies (execution.queue) to workers started with --gpus-per-trial.
            self._append_log(
                f"[tunelab] warning: the study asks {wanted} GPUs per trial; "
                f"slot {self.slot.name} has {len(self.slot.gpus)}\n".encode()
            )
        # A population member's folder is held for the whole run (worker/checkpoints.py).
        with checkpoints.held(self.config.checkpoint_root, self.study, self.trial) as note:
            if note:
                self._append_log(note.encode())
            return self._launch(started)

    def _launch(self, started: float) -> TrialOutcome:
        # Read where the log goes on only now: a population member's previous run (which
        # held its folder until just now) has shipped its last output.
        if self.trial.get("resume") or int(self.trial.get("retries") or 0) > 0:
            self.log_offset = self._log_end()
        try:
            process = self._popen()
        except OSError as exc:
            reason = f"could not start {self.spec['command'][0]!r}: {exc}"
            self._append_log(f"[tunelab] {reason}\n".encode())
            state = self._complete(failed=True, error=reason)
            return TrialOutcome(self.trial_id, state, None, reason, started, time.time())
        self.process = process
        try:
            return self._supervise(process, started)
        except BaseException:
            # The API stayed unreachable, or this worker is going down: leave no orphan.
            self._signal(process, signal.SIGKILL)
            with contextlib.suppress(Exception):
                process.wait(5)
            raise
        finally:
            if self.spool is not None:
                self.spool.close()

    def _supervise(self, process: subprocess.Popen[bytes], started: float) -> TrialOutcome:
        readers = [
            threading.Thread(
                target=self._pump, args=(s,), daemon=True, name=f"trial-{self.trial_id}-{n}"
            )
            for n, s in (("out", process.stdout), ("err", process.stderr))
        ]
        for reader in readers:
            reader.start()
        timeout_s = float(self.spec.get("timeout_s") or 0.0)
        deadline = time.monotonic() + timeout_s if timeout_s else None
        next_heartbeat = time.monotonic() + self.config.heartbeat_s
        open_streams = len(readers)
        exited_at: float | None = None
        while True:
            now = time.monotonic()
            wait = min(next_heartbeat - now, self.config.log_flush_s)
            if self.log_pending_since is not None:
                wait = min(wait, self._log_due() - now)
            if self.pending_since is not None:
                wait = min(wait, self.pending_since + self.config.metrics_flush_s - now)
            if self.kill_at is not None:
                wait = min(wait, self.kill_at - now)
            if self.offline_since is not None:
                wait = min(wait, self.next_probe - now)
            item: bytes | None
            if open_streams == 0:
                # The output has ended, so the exit is moments away: wait on the process
                # itself (Popen.wait polls from 0.5 ms up) rather than in fixed steps.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.0, min(wait, 0.05)))
                item = b""
            else:
                try:
                    item = self.lines.get(timeout=max(0.0, wait))
                except queue.Empty:
                    item = b""
            if item is None:
                open_streams -= 1
            elif item:
                self._on_line(item)
                # Drain what else is there before doing network work.
                while True:
                    try:
                        more = self.lines.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        open_streams -= 1
                    else:
                        self._on_line(more)
            now = time.monotonic()
            if self.pending and (
                len(self.pending) >= self.config.metrics_batch
                or (
                    self.pending_since is not None
                    and now - self.pending_since >= self.config.metrics_flush_s
                )
            ):
                self._flush_metrics(process)
                next_heartbeat = now + self.config.heartbeat_s
            if now >= next_heartbeat and process.poll() is None:
                self._heartbeat(process)
                next_heartbeat = time.monotonic() + self.config.heartbeat_s
            elif self.offline_since is not None and now >= self.next_probe:
                # Reports keep the heartbeat away while they flow; the spool must still
                # be delivered as soon as the API is back, not at the trial's end.
                self._probe(process if process.poll() is None else None)
            if self.log_pending_since is not None and (
                now >= self._log_due() or len(self.log_buffer) >= self.config.log_chunk_bytes
            ):
                self._flush_log()
            if deadline is not None and now >= deadline and self.ending is None:
                self._end(process, f"timed out after {timeout_s:g} s", "timeout", grace=True)
            if self.stop.is_set() and self.ending is None:
                self._end(process, "the worker is shutting down", "shutdown", grace=True)
            if self.kill_at is not None and now >= self.kill_at and process.poll() is None:
                self._signal(process, signal.SIGKILL)
                self.kill_at = now + 3600.0
            if process.poll() is not None:
                if exited_at is None:
                    self._mark("exited")
                exited_at = exited_at or time.time()
                if open_streams == 0:
                    break
                # A grandchild still holds the pipes: give it a moment, then end the group.
                if time.time() - exited_at > 2.0:
                    self._signal(process, signal.SIGKILL)
                    if time.time() - exited_at > 4.0:
                        break
        self._mark("streams closed")
        for reader in readers:
            reader.join(timeout=1.0)
        exited_at = exited_at or time.time()
        # More points than one batch go ahead on their own; the last batch and the log's
        # tail ride with the completion (or are sent on their own when none is sent).
        self._flush_metrics(process, final=True, keep=self.config.metrics_batch)
        state, reason = self._finish(process.returncode)
        if state == "paused" or self.ending_state == "paused":
            # Population-based training copies a member's weights as of this boundary (the
            # server may have resumed the trial already: its state then reads running).
            checkpoints.after_pause(self.config.checkpoint_root, self.study, self.trial)
        self._mark("completed")
        if log.isEnabledFor(logging.DEBUG):
            first = self.marks[0][1]
            log.debug(
                "trial %s end: %s",
                self.trial_id,
                ", ".join(f"{phase} +{(t - first) * 1000:.1f} ms" for phase, t in self.marks),
            )
        return TrialOutcome(
            self.trial_id, state, process.returncode, reason, started, exited_at, self.points
        )

    def _on_line(self, raw: bytes) -> None:
        self._append_log(raw)
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        self.tail.append(line)
        points = self.parser.parse(line)
        if points:
            if not self.pending:
                self.pending_since = time.monotonic()
            self.pending.extend(points)

    # API traffic -----------------------------------------------------------------------

    def _flush_metrics(
        self, process: subprocess.Popen[bytes] | None, final: bool = False, keep: int = 0
    ) -> None:
        while len(self.pending) > keep:
            batch = self.pending[: self.config.metrics_batch]
            del self.pending[: self.config.metrics_batch]
            answer = self._deliver("metrics", {"points": batch})
            if answer is None:
                continue
            self.points += len(batch)
            if not final and process is not None and answer:
                self._on_decision(process, answer)
        if not self.pending:
            self.pending_since = None

    def _heartbeat(self, process: subprocess.Popen[bytes]) -> None:
        if self.ending_state == "superseded":
            return
        if self.offline_since is not None:
            if time.monotonic() >= self.next_probe:
                self._probe(process)
            return
        try:
            answer = self.live.heartbeat(self.trial_id, attempt=self.attempt)
        except Unreachable as exc:
            self._go_offline(exc)
            return
        except TunelabError as exc:
            if superseded(exc):
                self._supersede(exc)
            elif exc.status_code == 404:  # the trial or its study was deleted
                self._end(process, "the trial no longer exists", "cancelled", grace=False)
            return
        self._on_decision(process, answer)

    def _on_decision(self, process: subprocess.Popen[bytes], answer: dict[str, Any]) -> None:
        decision = answer.get("decision")
        if decision in ("stop", "pause") and self.ending is None:
            reason = str(answer.get("reason") or decision)
            # pause: SIGTERM so the script checkpoints; it resumes from the same folder.
            self._end(process, reason, "paused" if decision == "pause" else "stopped", grace=True)

    def _append_log(self, raw: bytes) -> None:
        if self.log_pending_since is None:
            self.log_pending_since = time.monotonic()
        self.log_buffer += raw if len(raw) < _LINE_MAX or raw.endswith(b"\n") else raw + b"\n"

    def _log_due(self) -> float:
        """When the buffered output is sent: after lingering for more, and at most one
        chunk per log_flush_s (a chatty script must not cost a request per line)."""
        assert self.log_pending_since is not None
        return max(
            self.log_pending_since + self.config.log_linger_s,
            self.log_flushed_at + self.config.log_flush_s,
        )

    def _log_pieces(self, final: bool) -> list[str]:
        # The decoder keeps a UTF-8 character cut between two reads for the next flush;
        # bytes that are no UTF-8 at all become U+FFFD rather than breaking the log.
        text = self.decoder.decode(bytes(self.log_buffer), final=final)
        self.log_buffer.clear()
        self.log_pending_since = None
        step = max(1, self.config.log_chunk_bytes // 4)  # characters: at most 4 bytes each
        return [text[begin : begin + step] for begin in range(0, len(text), step)]

    def _send_log(self, piece: str) -> None:
        self._deliver("log", {"offset": self.log_offset, "text": piece})
        self.log_offset += len(piece.encode())

    def _flush_log(self, final: bool = False) -> None:
        self.log_flushed_at = time.monotonic()
        for piece in self._log_pieces(final):
            self._send_log(piece)

    def _log_end(self) -> int:
        """Where a resumed or retried trial's output continues: after the earlier runs'."""
        try:
            return self.client.log_end(self.trial_id)
        except Unreachable:
            raise
        except TunelabError as exc:
            log.warning("trial %s: log end unknown, output starts at 0: %s", self.trial_id, exc)
            return 0

    def _server_state(self, fallback: str) -> str:
        try:
            return str(self._told(lambda: self.client.get_trial(self.trial_id))["state"])
        except TunelabError:
            return fallback

    def _complete(self, failed: bool = False, error: str | None = None) -> str:
        """Tells the API the trial's end, with the points and output not sent yet."""
        points = list(self.pending)
        self.pending.clear()
        self.pending_since = None
        pieces = self._log_pieces(final=True)
        for piece in pieces[:-1]:
            self._send_log(piece)
        tail = (self.log_offset, pieces[-1]) if pieces else None
        if self.ending_state == "superseded":
            return "superseded"
        if points or tail is not None:
            try:
                answer = self._told(
                    lambda: self.client.complete(
                        self.trial_id,
                        failed=failed,
                        error=error,
                        points=points,
                        log=tail,
                        attempt=self.attempt,
                    )
                )
            except TunelabError as exc:
                if superseded(exc):
                    self._supersede(exc)
                    return "superseded"
                # Refused as a whole (no value of the objective, a point it rejects, an
                # API without these fields): send the parts on their own, then tell again.
                log.info(
                    "trial %s: completion refused (%s); sending output apart", self.trial_id, exc
                )
                self.pending.extend(points)
                self._flush_metrics(None, final=True)
                if tail is not None:
                    self._send_log(tail[1])
            else:
                self.points += len(points)
                if tail is not None:
                    self.log_offset += len(tail[1].encode())
                return str(answer["state"])
        try:
            return str(
                self._told(
                    lambda: self.client.complete(
                        self.trial_id, failed=failed, error=error, attempt=self.attempt
                    )
                )["state"]
            )
        except TunelabError as exc:
            if superseded(exc) or self.ending_state == "superseded":
                self._supersede(exc)
                return "superseded"
            if exc.status_code == 422 and not failed:
                metric = self.study.get("objective", {}).get("metric")
                return self._complete(
                    failed=True,
                    error=f"the process exited 0 but reported no value of {metric!r}: {exc.detail}",
                )
            log.warning("trial %s: complete rejected: %s", self.trial_id, exc)
            return "unknown"

    # Ending -----------------------------------------------------------------------------

    def _signal(self, process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)

    def _end(self, process: subprocess.Popen[bytes], reason: str, state: str, grace: bool) -> None:
        self.ending, self.ending_state = reason, state
        if process.poll() is not None:
            return
        self._signal(process, signal.SIGTERM)
        grace_s = float(self.spec.get("stop_grace_s", 10.0)) if grace else 0.0
        self.kill_at = time.monotonic() + grace_s
        self._append_log(f"[tunelab] sent SIGTERM: {reason}\n".encode())

    def _finish(self, returncode: int) -> tuple[str, str]:
        if self.ending_state == "superseded":
            return "superseded", self.ending or ""
        if self.ending_state in ("stopped", "paused", "cancelled"):
            # The server decided (and recorded) this already; a script that caught SIGTERM
            # and exited 0 must not turn a stopped trial into a completed one. No complete
            # carries the last output here: a paused trial may already run elsewhere.
            self._flush_metrics(None, final=True)
            self._flush_log(final=True)
            return self._server_state(self.ending_state), self.ending or ""
        if self.ending_state in ("timeout", "shutdown"):
            reason = self.ending or self.ending_state
            return self._complete(failed=True, error=reason), reason
        if returncode == 0:
            return self._complete(), "exited 0"
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
        tail = "\n".join(self.tail)
        return self._complete(failed=True, error=f"{how}\n{tail}"), how
