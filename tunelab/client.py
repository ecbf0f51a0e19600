"""A Python client for the Tunelab API.

    from tunelab.client import Client

    client = Client()  # TUNELAB_URL, TUNELAB_TOKEN, or http://127.0.0.1:8000
    study = client.create_study({"name": "digits", "objective": {...}, "space": {...}})
    trial = study.ask()
    trial.report(1, loss=0.5)
    trial.complete()
    study.dataframe()  # one row per trial, pandas

Requests go through `tunelab.transport` (its retry policy, its NaN encoding, its one
error type `TunelabError`); pandas is imported when a dataframe is asked for, so scripts
that only run trials need nothing else.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from tunelab.transport import (
    DEFAULT_URL,
    Transport,
    TunelabError,
    Unreachable,
    decode_float,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_URL", "Client", "Study", "Trial", "TunelabError", "Unreachable"]

FINISHED_STUDY_STATES = frozenset({"completed", "stopped"})
FINISHED_TRIAL_STATES = frozenset({"completed", "stopped", "failed", "cancelled"})


def _world(world: Mapping[str, int] | tuple[int, int] | None) -> dict[str, int] | None:
    if world is None:
        return None
    if isinstance(world, tuple):
        return {"nodes": int(world[0]), "gpus_per_node": int(world[1])}
    return {"nodes": int(world["nodes"]), "gpus_per_node": int(world["gpus_per_node"])}


def _scale_body(
    to: Mapping[str, int] | tuple[int, int],
    source: Mapping[str, int] | tuple[int, int] | None,
    rule: str,
    per_device_batch: int | None,
    warmup: str | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"to": _world(to), "rule": rule}
    if source is not None:
        body["from"] = _world(source)
    if per_device_batch is not None:
        body["per_device_batch"] = per_device_batch
    if warmup is not None:
        body["warmup"] = warmup
    return body


class Client:
    """A connection to one Tunelab server."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
        retry_for_s: float = 30.0,
    ) -> None:
        """`url` defaults to TUNELAB_URL, `token` to TUNELAB_TOKEN. A call that finds the
        server restarting is sent again for up to `retry_for_s` seconds (see
        `tunelab.transport` for which calls are)."""
        self.url = (url or os.environ.get("TUNELAB_URL") or DEFAULT_URL).rstrip("/")
        self.transport = Transport(self.url, token, timeout_s=timeout, retry_for_s=retry_for_s)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.transport.close()

    def request(self, method: str, path: str, **options: Any) -> Any:
        """One API call (`path` below /api/v1): the decoded JSON answer, or TunelabError.
        `options` are those of `Transport.request`: json, params, content, headers and
        idempotent."""
        return self.transport.request(method, path, **options)

    # Studies ----------------------------------------------------------------------------

    def create_study(
        self,
        body: Mapping[str, Any] | None = None,
        warm_start: Mapping[str, Any] | None = None,
        **fields: Any,
    ) -> Study:
        """Creates a study from a body (as in the API) and/or keyword fields.

        `warm_start={"parents": [ids], "mode": "same_data" | "transfer"}` then reuses the
        parents' results (see `Study.warm_start`)."""
        payload = {**(body or {}), **fields}
        study = Study(self, self.request("POST", "/studies", json=payload))
        if warm_start is not None:
            study.warm_start(**warm_start)
        return study

    def study(self, study_id: int) -> Study:
        return Study(self, self.request("GET", f"/studies/{study_id}"))

    def import_optuna(
        self,
        study: Any = None,
        *,
        storage: str | None = None,
        study_name: str | None = None,
        name: str | None = None,
        strategy: Mapping[str, Any] | str | None = None,
        more_trials: int = 20,
        max_parallel_trials: int = 1,
        project: str | None = None,
    ) -> Study:
        """Brings an Optuna study in, ready to go on under any strategy (default tpe):
        an `optuna.Study`, or the one named `study_name` in an Optuna `storage` URL
        (opened here, with Optuna: the server needs no access to it). Trials, params
        (the space inferred from their distributions), values, states (pruned ones
        become stopped), intermediate values and user attrs come along; `more_trials`
        new trials may follow them."""
        from tunelab.integrations import optuna as documents

        if study is not None:
            document = documents.study_document(study)
        elif storage and study_name:
            document = documents.load(storage, study_name)
        else:
            raise ValueError("give an optuna.Study, or storage= and study_name=")
        body: dict[str, Any] = {
            "study": document,
            "more_trials": more_trials,
            "max_parallel_trials": max_parallel_trials,
        }
        if name is not None:
            body["name"] = name
        if strategy is not None:
            body["strategy"] = {"name": strategy} if isinstance(strategy, str) else dict(strategy)
        params = {"project": project} if project is not None else None
        return Study(self, self.request("POST", "/studies/import/optuna", json=body, params=params))

    def studies(self, state: str | None = None, page_size: int = 100) -> list[Study]:
        """Every study, newest first."""
        found: list[Study] = []
        offset = 0
        while True:
            params: dict[str, Any] = {"offset": offset, "limit": page_size}
            if state:
                params["state"] = state
            page = self.request("GET", "/studies", params=params)
            found.extend(Study(self, item) for item in page["items"])
            offset += len(page["items"])
            if not page["items"] or offset >= page["total"]:
                return found

    def trial(self, trial_id: int) -> Trial:
        return Trial(self, self.request("GET", f"/trials/{trial_id}"))

    def scale(
        self,
        params: Mapping[str, Any],
        to: Mapping[str, int] | tuple[int, int],
        source: Mapping[str, int] | tuple[int, int],
        rule: str = "linear",
        roles: Mapping[str, str] | None = None,
        per_device_batch: int | None = None,
        warmup: str | None = None,
    ) -> dict[str, Any]:
        """Any config moved to another world size, with its arithmetic (`steps`)."""
        body = _scale_body(to, source, rule, per_device_batch, warmup)
        body.update(params=dict(params), roles=dict(roles or {}))
        result: dict[str, Any] = self.request("POST", "/scale", json=body, idempotent=True)
        return result

    def logs(self, trial_id: int, offset: int = 0) -> dict[str, Any]:
        """A trial's console output from byte `offset`: text, next_offset, complete."""
        result: dict[str, Any] = self.request(
            "GET", f"/trials/{trial_id}/logs", params={"offset": offset}
        )
        return result

    def follow_logs(self, trial_id: int, poll_s: float = 1.0) -> Iterator[str]:
        """Yields new console output until the trial has finished and all of it was read."""
        offset = 0
        while True:
            chunk = self.logs(trial_id, offset)
            if chunk["text"]:
                yield chunk["text"]
            offset = chunk["next_offset"]
            if chunk["complete"] and not chunk["text"]:
                return
            if not chunk["text"]:
                time.sleep(poll_s)

    # Webhooks (notifications; docs/integrations.md) -------------------------------------

    def create_webhook(self, url: str, **fields: Any) -> dict[str, Any]:
        """A webhook POSTing to `url`; `fields`: study_id (None: every study of the
        project), project, events, format ("json" | "slack"), description, secret.
        The answer is the only one that shows the `secret`."""
        result: dict[str, Any] = self.request("POST", "/webhooks", json={"url": url, **fields})
        return result

    def webhooks(self, study_id: int | None = None) -> list[dict[str, Any]]:
        params = {"study_id": study_id} if study_id is not None else None
        items: list[dict[str, Any]] = self.request("GET", "/webhooks", params=params)["items"]
        return items

    def update_webhook(self, webhook_id: int, **fields: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.request("PATCH", f"/webhooks/{webhook_id}", json=fields)
        return result

    def delete_webhook(self, webhook_id: int) -> None:
        self.request("DELETE", f"/webhooks/{webhook_id}")

    def test_webhook(self, webhook_id: int) -> dict[str, Any]:
        """Sends a "ping" now; the answer is its delivery."""
        result: dict[str, Any] = self.request("POST", f"/webhooks/{webhook_id}/test")
        return result

    def webhook_deliveries(
        self, webhook_id: int, limit: int = 50, before: int | None = None
    ) -> list[dict[str, Any]]:
        """A webhook's deliveries, newest first (`before`: a delivery id, for the next page)."""
        params: dict[str, Any] = {"limit": limit}
        if before is not None:
            params["before"] = before
        items: list[dict[str, Any]] = self.request(
            "GET", f"/webhooks/{webhook_id}/deliveries", params=params
        )["items"]
        return items

    def redeliver(self, webhook_id: int, delivery_id: int) -> dict[str, Any]:
        """Sends a delivery's payload again, as a new delivery."""
        result: dict[str, Any] = self.request(
            "POST", f"/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"
        )
        return result


# Export columns that are text or lists, never numbers written as "NaN" or "Infinity".
_TEXT_COLUMNS = frozenset({"notes", "tags"})


class Trial:
    """One trial: report metrics, tell the result, read its curves and logs."""

    def __init__(self, client: Client, data: Mapping[str, Any]) -> None:
        self.client = client
        self.data = dict(data)
        self.last_decision = "continue"
        self.last_reason = ""

    def __repr__(self) -> str:
        return f"Trial(id={self.id}, number={self.number}, state={self.state!r})"

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def study_id(self) -> int:
        return int(self.data["study_id"])

    @property
    def number(self) -> int:
        return int(self.data["number"])

    @property
    def state(self) -> str:
        return str(self.data["state"])

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.data["params"])

    @property
    def budget(self) -> float | None:
        budget = self.data.get("budget")
        return None if budget is None else float(budget)

    @property
    def value(self) -> float | None:
        return decode_float(self.data.get("value"))

    @property
    def values(self) -> list[float | None] | None:
        """One value per objective (several objectives), None before a result."""
        raw = self.data.get("values")
        return None if raw is None else [decode_float(v) for v in raw]

    @property
    def should_stop(self) -> bool:
        """Whether the server's last answer asked this trial to stop or pause."""
        return self.last_decision in ("stop", "pause")

    def refresh(self) -> Trial:
        self.data = self.client.request("GET", f"/trials/{self.id}")
        return self

    @property
    def tags(self) -> list[str]:
        return list(self.data.get("tags") or [])

    @property
    def notes(self) -> str:
        """The Markdown note (read by `client.trial(id)` and `refresh()`; a listing carries
        only `notes_excerpt`)."""
        return str(self.data.get("notes") or "")

    def update(self, notes: str | None = None, tags: Iterable[str] | None = None) -> Trial:
        """Sets the trial's note and/or tags (replaced as given); None leaves one as is."""
        body: dict[str, Any] = {}
        if notes is not None:
            body["notes"] = notes
        if tags is not None:
            body["tags"] = list(tags)
        self.data = self.client.request("PATCH", f"/trials/{self.id}", json=body, idempotent=True)
        return self

    def report(
        self, step: float, values: Mapping[str, float] | None = None, **metrics: float
    ) -> str:
        """Reports metric values at one step, as keywords or a mapping (for names such as
        "val/loss"); returns the decision: continue, stop or pause."""
        named = {**(values or {}), **metrics}
        points = [{"name": name, "step": step, "value": value} for name, value in named.items()]
        return self.report_points(points)

    def report_points(self, points: Iterable[Mapping[str, Any]]) -> str:
        # A point is keyed by (name, step): sending a batch twice stores it once.
        answer = self.client.request(
            "POST", f"/trials/{self.id}/metrics", json=list(points), idempotent=True
        )
        self.last_decision, self.last_reason = answer["decision"], answer.get("reason", "")
        return self.last_decision

    def complete(self, value: float | Sequence[float] | None = None) -> Trial:
        """Tells the result: a value, or a list with one value per objective; without
        one the server aggregates the objectives' points."""
        body: dict[str, Any] = {}
        if isinstance(value, int | float):
            body = {"value": value}
        elif value is not None:
            body = {"values": list(value)}
        # The server keeps the first verdict, so a completion may be sent again.
        self.data = self.client.request(
            "POST", f"/trials/{self.id}/complete", json=body, idempotent=True
        )
        return self

    tell = complete

    def fail(self, error: str = "") -> Trial:
        self.data = self.client.request(
            "POST",
            f"/trials/{self.id}/complete",
            json={"state": "failed", "error": error},
            idempotent=True,
        )
        return self

    def heartbeat(self) -> str:
        answer = self.client.request("POST", f"/trials/{self.id}/heartbeat", idempotent=True)
        self.last_decision, self.last_reason = answer["decision"], answer.get("reason", "")
        return self.last_decision

    def metrics(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every metric point of the trial, oldest first (follows the `since` cursor)."""
        points: list[dict[str, Any]] = []
        since = 0
        while True:
            params: dict[str, Any] = {"since": since, "limit": 10_000}
            if name:
                params["name"] = name
            page = self.client.request("GET", f"/trials/{self.id}/metrics", params=params)
            for item in page["items"]:
                item["value"] = decode_float(item["value"])
                points.append(item)
            if not page["items"] or page["cursor"] == since:
                return points
            since = page["cursor"]

    def logs(self, offset: int = 0) -> dict[str, Any]:
        return self.client.logs(self.id, offset)

    def scale(
        self,
        to: Mapping[str, int] | tuple[int, int],
        source: Mapping[str, int] | tuple[int, int] | None = None,
        rule: str = "linear",
        per_device_batch: int | None = None,
        warmup: str | None = None,
    ) -> dict[str, Any]:
        """This trial's config at another world size, with its arithmetic (`steps`)."""
        body = _scale_body(to, source, rule, per_device_batch, warmup)
        result: dict[str, Any] = self.client.request(
            "POST", f"/trials/{self.id}/scale", json=body, idempotent=True
        )
        return result


class Study:
    """One study: ask for trials, wait for it, and analyse it in pandas."""

    def __init__(self, client: Client, data: Mapping[str, Any]) -> None:
        self.client = client
        self.data = dict(data)

    def __repr__(self) -> str:
        return f"Study(id={self.id}, name={self.name!r}, state={self.state!r})"

    @property
    def id(self) -> int:
        return int(self.data["id"])

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def state(self) -> str:
        return str(self.data["state"])

    @property
    def best_value(self) -> float | None:
        return decode_float(self.data.get("best_value"))

    @property
    def finished(self) -> bool:
        return self.state in FINISHED_STUDY_STATES

    def refresh(self) -> Study:
        self.data = self.client.request("GET", f"/studies/{self.id}")
        return self

    def update(self, **fields: Any) -> Study:
        # Setting fields to given values: twice is the same as once.
        self.data = self.client.request(
            "PATCH", f"/studies/{self.id}", json=fields, idempotent=True
        )
        return self

    def pause(self) -> Study:
        return self.update(state="paused")

    def resume(self) -> Study:
        return self.update(state="running")

    def stop(self) -> Study:
        return self.update(state="stopped")

    # Ask / tell -------------------------------------------------------------------------

    def ask(
        self,
        params: Mapping[str, Any] | None = None,
        worker: str | None = None,
        wait_s: float = 0.0,
    ) -> Trial:
        """The next trial to run (the strategy's choice, or `params`), already running.

        While every parallel slot is taken the server answers 409 with Retry-After; with
        `wait_s` the ask is repeated as told for up to that many seconds."""
        body: dict[str, Any] = {}
        if params is not None:
            body["params"] = dict(params)
        if worker is not None:
            body["worker"] = worker
        deadline = time.monotonic() + wait_s
        while True:
            try:
                data = self.client.request("POST", f"/studies/{self.id}/trials", json=body)
                return Trial(self.client, data)
            except TunelabError as error:
                pause = error.retry_after
                if error.status_code != 409 or pause is None or time.monotonic() + pause > deadline:
                    raise
                time.sleep(pause)

    def enqueue(self, params: Mapping[str, Any]) -> Trial:
        """Queues a config; the next ask hands it out before the strategy suggests more."""
        body = {"params": dict(params), "queue": True}
        return Trial(
            self.client, self.client.request("POST", f"/studies/{self.id}/trials", json=body)
        )

    def add_result(
        self,
        params: Mapping[str, Any],
        value: float,
        state: str = "completed",
        metrics: Iterable[Mapping[str, Any]] | None = None,
    ) -> Trial:
        """Imports a result obtained elsewhere, as an observation for the strategy."""
        body: dict[str, Any] = {"params": dict(params), "value": value, "state": state}
        if metrics is not None:
            body["metrics"] = list(metrics)
        return Trial(
            self.client, self.client.request("POST", f"/studies/{self.id}/trials", json=body)
        )

    def trials(self, states: Iterable[str] | None = None) -> list[Trial]:
        """Every trial in number order (follows the pagination cursor)."""
        found: list[Trial] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if states:
                params["state"] = list(states)
            if cursor:
                params["cursor"] = cursor
            page = self.client.request("GET", f"/studies/{self.id}/trials", params=params)
            found.extend(Trial(self.client, item) for item in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                return found

    def best_trial(self) -> Trial | None:
        best_id = self.refresh().data.get("best_trial_id")
        return None if best_id is None else self.client.trial(int(best_id))

    def pareto(self) -> dict[str, Any]:
        """The best trials under several objectives (feasible, non-dominated), with the
        hypervolume and its reference point (`reference_point_source`: given or derived)."""
        result: dict[str, Any] = self.client.request("GET", f"/studies/{self.id}/pareto")
        return result

    def pareto_trials(self) -> list[Trial]:
        return [Trial(self.client, data) for data in self.pareto()["trials"]]

    def hypervolume_history(self) -> list[dict[str, Any]]:
        """The hypervolume after each trial with a result, by trial number."""
        result: dict[str, Any] = self.client.request("GET", f"/studies/{self.id}/hypervolume")
        return list(result["points"])

    def wait(
        self,
        timeout: float | None = None,
        poll_s: float = 2.0,
        progress: bool = True,
        stream: IO[str] | None = None,
    ) -> Study:
        """Waits until the study has finished, drawing a progress bar of finished trials."""
        deadline = None if timeout is None else time.monotonic() + timeout
        out = stream or sys.stderr
        while True:
            self.refresh()
            if progress:
                out.write("\r" + progress_line(self.data))
                out.flush()
            if self.finished:
                if progress:
                    out.write("\n")
                return self
            if deadline is not None and time.monotonic() >= deadline:
                if progress:
                    out.write("\n")
                raise TimeoutError(f"study {self.id} is still {self.state} after {timeout:g} s")
            time.sleep(poll_s)

    # Follow-up studies --------------------------------------------------------------------

    def promote(
        self,
        to: Mapping[str, int] | tuple[int, int],
        top_k: int = 3,
        rule: str = "linear",
        source: Mapping[str, int] | tuple[int, int] | None = None,
        name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Study:
        """A new study at a larger world size holding this study's best `top_k` configs,
        scaled by `rule` and queued. `overrides` set parameters outright (data_fraction=1.0)."""
        body = _scale_body(
            to, source, rule, options.pop("per_device_batch", None), options.pop("warmup", None)
        )
        body.update(top_k=top_k, overrides=dict(overrides or {}), **options)
        if name is not None:
            body["name"] = name
        answer = self.client.request("POST", f"/studies/{self.id}/promote", json=body)
        return Study(self.client, answer["study"])

    def warm_start(
        self, parents: Iterable[int], mode: str = "same_data", top_k: int = 3
    ) -> dict[str, Any]:
        """Reuses parent studies: their results as observations (same_data), or their best
        configs as this study's first trials (transfer)."""
        body = {"parents": list(parents), "mode": mode, "top_k": top_k}
        answer: dict[str, Any] = self.client.request(
            "POST", f"/studies/{self.id}/warm_start", json=body
        )
        self.refresh()
        return answer

    def extend(
        self, more_trials: int, space: Mapping[str, Any] | None = None, name: str | None = None
    ) -> Study:
        """More trials for this study; with a narrower `space`, a new study that reuses this
        one's results inside it."""
        body: dict[str, Any] = {"more_trials": more_trials}
        if space is not None:
            body["space"] = dict(space)
        if name is not None:
            body["name"] = name
        answer = self.client.request("POST", f"/studies/{self.id}/extend", json=body)
        study = Study(self.client, answer["study"])
        if study.id == self.id:
            self.data = study.data
        return study

    def population(self) -> dict[str, Any]:
        """A pbt or pb2 study's members: schedules, boundary scores and exploits."""
        result: dict[str, Any] = self.client.request("GET", f"/studies/{self.id}/population")
        return result

    def replay(self, trial_id: int | None = None) -> Trial:
        """Queues one trial that runs a member's hyperparameter schedule (the best
        member's by default) from scratch, in this study."""
        body = {} if trial_id is None else {"trial_id": trial_id}
        return Trial(
            self.client, self.client.request("POST", f"/studies/{self.id}/replay", json=body)
        )

    def _schedules(self) -> dict[int, list[dict[str, Any]]]:
        """Each trial's hyperparameter schedule (pbt, pb2 studies; empty for others)."""
        strategy = (self.data.get("strategy") or {}).get("name")
        if strategy not in ("pbt", "pb2"):
            return {}
        population = self.population()
        return {
            int(m["trial_id"]): list(m["schedule"])
            for m in [*population["members"], *population["replays"]]
        }

    def lineage(self) -> dict[str, Any]:
        result: dict[str, Any] = self.client.request("GET", f"/studies/{self.id}/lineage")
        return result

    def importance(self, method: str = "fanova") -> dict[str, Any]:
        """How much each parameter matters to the objective (fanova or permutation),
        computed by the server from the completed trials."""
        result: dict[str, Any] = self.client.request(
            "GET", f"/studies/{self.id}/importance", params={"method": method}
        )
        return result

    # Analysis ---------------------------------------------------------------------------

    def rows(self) -> list[dict[str, Any]]:
        """One dict per trial: number, trial_id, params_*, value, state, budget, start,
        end, duration_s, best_so_far."""
        rows = self.client.request(
            "GET", f"/studies/{self.id}/trials.csv", params={"format": "json"}
        )
        return [
            {
                key: value if key in _TEXT_COLUMNS else decode_float(value)
                for key, value in row.items()
            }
            for row in rows
        ]

    def dataframe(self) -> pd.DataFrame:
        """One row per trial, with a best-so-far column, as a pandas DataFrame."""
        import pandas as pd

        frame = pd.DataFrame(self.rows())
        if frame.empty:
            frame = pd.DataFrame(
                columns=[
                    "number",
                    "trial_id",
                    "value",
                    "state",
                    "budget",
                    "start",
                    "end",
                    "duration_s",
                    "best_so_far",
                    "feasible",
                    "is_pareto",
                    "tags",
                    "notes",
                ]
            )
        for column in ("start", "end"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        for column in ("value", "budget", "duration_s", "best_so_far"):
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        # True for the study's best trials: its Pareto set with several objectives.
        frame["is_pareto"] = frame["is_pareto"].fillna(False).astype(bool)
        # A person's tags (a list per trial) and Markdown notes ("" for none).
        if "tags" in frame:
            frame["tags"] = [list(t) if isinstance(t, list) else [] for t in frame["tags"]]
        if "notes" in frame:
            frame["notes"] = frame["notes"].fillna("").astype(str)
        frame.insert(0, "study_id", self.id)
        schedules = self._schedules()
        if schedules:
            # pbt / pb2: the values each trial's weights were trained with, per interval:
            # [{"step": 0.0, "params": {...}}, {"step": 4.0, "params": {...}}, ...]
            frame["schedule"] = [schedules.get(int(t), []) for t in frame["trial_id"]]
        return frame

    def curve_rows(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        wanted = set(names) if names is not None else None
        rows: list[dict[str, Any]] = []
        schedules = self._schedules()
        for trial in self.trials():
            schedule = schedules.get(trial.id)
            for point in trial.metrics():
                if wanted is not None and point["name"] not in wanted:
                    continue
                row = {
                    "study_id": self.id,
                    "trial_id": trial.id,
                    "number": trial.number,
                    "name": point["name"],
                    "step": point["step"],
                    "value": point["value"],
                    "time": point["created_at"],
                }
                if schedule:
                    # pbt / pb2: the hyperparameters in force when this step was trained.
                    row["params"] = _in_force(schedule, float(point["step"]))
                rows.append(row)
        return rows

    def curves(self, names: Iterable[str] | None = None) -> pd.DataFrame:
        """Every metric point of every trial, long format: one row per (trial, name, step)."""
        import pandas as pd

        rows = self.curve_rows(names)
        columns = ["study_id", "trial_id", "number", "name", "step", "value", "time"]
        if any("params" in row for row in rows):
            columns.append("params")
        frame = pd.DataFrame(rows, columns=columns)
        frame["time"] = pd.to_datetime(frame["time"], utc=True, format="ISO8601")
        frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
        return frame

    def export(self, path: str | os.PathLike[str], what: str = "trials") -> Path:
        """Writes the trials (or `what="curves"`) to .csv or .parquet, by the file's suffix."""
        target = Path(path)
        frame = self.dataframe() if what == "trials" else self.curves()
        if target.suffix == ".parquet":
            frame.to_parquet(target, index=False)
        elif target.suffix == ".csv":
            frame.to_csv(target, index=False)
        else:
            raise ValueError(f"{target.name}: use a .csv or .parquet file name")
        return target


def _in_force(schedule: Sequence[Mapping[str, Any]], step: float) -> dict[str, Any]:
    """The params of a schedule for the epoch that ends at `step` (an entry at step s
    holds from the epoch after s)."""
    current: dict[str, Any] = dict(schedule[0]["params"]) if schedule else {}
    for entry in schedule:
        if float(entry["step"]) < step:
            current = dict(entry["params"])
    return current


def progress_line(study: Mapping[str, Any], width: int = 30) -> str:
    """`[#####-----] 12/40 trials  running 3  best 0.123  running` for a study's data."""
    counts: Mapping[str, int] = study.get("trial_counts", {})
    total = max(1, int(study.get("limits", {}).get("max_trials", 1)))
    done = sum(counts.get(state, 0) for state in FINISHED_TRIAL_STATES)
    filled = min(width, round(width * done / total))
    best = decode_float(study.get("best_value"))
    best_text = "-" if best is None else f"{best:.6g}"
    return (
        f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total} trials  "
        f"running {counts.get('running', 0)}  best {best_text}  {study.get('state', '')}"
    )
