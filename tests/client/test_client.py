from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from tests.transport.scripted import Reply, closed_port, scripted_server
from tunelab.client import Client, Study, TunelabError, Unreachable, progress_line

SPACE = {
    "lr": {"type": "float", "low": 1e-5, "high": 1e-3, "scale": "log", "role": "learning_rate"},
    "per_device_batch": {"type": "int", "low": 8, "high": 32, "role": "per_device_batch_size"},
    "optimizer": {"type": "categorical", "choices": ["adam", "sgd"]},
}


def body(**overrides):
    return {
        "name": "client study",
        "objective": {"metric": "loss", "direction": "minimize"},
        "space": SPACE,
        "strategy": {"name": "random", "seed": 5},
        "limits": {"max_trials": 4, "max_parallel_trials": 2},
        "tags": {"world": {"nodes": 2, "gpus_per_node": 8}},
        **overrides,
    }


def test_round_trip_against_a_real_server(server_url, tmp_path, monkeypatch):
    monkeypatch.delenv("TUNELAB_TOKEN", raising=False)
    with Client(server_url) as client:
        study = client.create_study(body())
        assert study.state == "running" and study.id in [s.id for s in client.studies()]
        values = [0.8, 0.3, float("nan"), 0.5]
        for number, final in enumerate(values):
            trial = study.ask()
            assert trial.number == number
            for step in range(3):
                assert trial.report(step, {"loss": final + (2 - step) * 0.1}, acc=0.5) == "continue"
            client.request(
                "POST", f"/trials/{trial.id}/logs", json={"offset": 0, "text": f"trial {number}\n"}
            )
            trial.complete(final)
        stream = io.StringIO()
        study.wait(timeout=10, poll_s=0.1, stream=stream)
        assert study.state == "completed" and study.best_value == 0.3
        assert "4/4 trials" in stream.getvalue()

        frame = study.dataframe()
        assert list(frame["number"]) == [0, 1, 2, 3]
        for column in (
            "study_id",
            "params_lr",
            "params_per_device_batch",
            "params_optimizer",
            "value",
            "state",
            "start",
            "end",
            "duration_s",
            "best_so_far",
        ):
            assert column in frame.columns
        assert math.isnan(frame["value"][2])
        assert list(frame["best_so_far"]) == [0.8, 0.3, 0.3, 0.3]
        assert (
            str(frame["start"].dtype).startswith("datetime64") and (frame["duration_s"] >= 0).all()
        )

        curves = study.curves()
        assert len(curves) == 4 * 3 * 2
        assert set(curves.columns) == {
            "study_id",
            "trial_id",
            "number",
            "name",
            "step",
            "value",
            "time",
        }
        assert curves[curves.name == "loss"].groupby("number")["step"].count().tolist() == [
            3,
            3,
            3,
            3,
        ]
        assert len(study.curves(["acc"])) == 12

        parquet = study.export(tmp_path / "trials.parquet")
        assert pd.read_parquet(parquet)["value"].tolist()[:2] == [0.8, 0.3]
        csv = study.export(tmp_path / "curves.csv", what="curves")
        assert len(pd.read_csv(csv)) == 24

        best = study.best_trial()
        assert best is not None and best.value == 0.3
        assert client.logs(best.id)["text"] == "trial 1\n"
        assert "".join(client.follow_logs(best.id, poll_s=0.05)) == "trial 1\n"
        scaled = best.scale({"nodes": 4, "gpus_per_node": 8}, rule="sqrt")
        assert scaled["params"]["lr"] == pytest.approx(best.params["lr"] * math.sqrt(2))
        assert scaled["from"]["world_size"] == 16

        assert study.importance()["n_trials"] == 3  # the NaN one does not count
        warm = client.create_study(
            body(name="warm"), warm_start={"parents": [study.id], "mode": "same_data"}
        )
        assert warm.data["trial_counts"]["completed"] == 3
        assert warm.data["parent_study_id"] == study.id
        assert warm.lineage()["entries"][0]["kind"] == "warm_start"
        narrowed = study.extend(2, space={**SPACE, "optimizer": {"type": "fixed", "value": "adam"}})
        assert narrowed.id != study.id and narrowed.data["parent_study_id"] == study.id

        with pytest.raises(TunelabError) as error:
            study.ask()
        assert error.value.status_code == 410 and error.value.field == "state"
        with pytest.raises(TunelabError) as error:
            client.study(999999)
        assert error.value.status_code == 404


def _point(point_id: int, step: int, value: object) -> dict[str, object]:
    created = f"2026-01-01T00:00:0{point_id}Z"
    return {"id": point_id, "name": "loss", "step": step, "value": value, "created_at": created}


def test_token_from_the_environment_and_paginated_curves(monkeypatch):
    monkeypatch.setenv("TUNELAB_TOKEN", "tl_secret")
    trial = {"id": 7, "study_id": 1, "number": 0, "state": "running", "params": {}}
    replies = [
        Reply(200, {"id": 1, "name": "s", "state": "running"}),
        Reply(200, {"items": [trial], "next_cursor": None}),
        Reply(200, {"items": [_point(1, 0, "NaN")], "cursor": 1}),
        Reply(200, {"items": [_point(2, 1, 0.5)], "cursor": 2}),
        Reply(200, {"items": [], "cursor": 2}),
        Reply(404, {"detail": "nope", "field": "x"}),
    ]
    with scripted_server(*replies) as server, Client(server.url) as client:
        study = client.study(1)
        curves = study.curves()
        assert curves["step"].tolist() == [0, 1] and math.isnan(curves["value"][0])
        with pytest.raises(TunelabError) as error:
            client.request("GET", "/elsewhere")
        assert error.value.field == "x"
    assert [r.path.split("?")[0] for r in server.received[2:5]] == ["/api/v1/trials/7/metrics"] * 3
    assert "since=1" in server.received[3].path
    assert all(r.headers["authorization"] == "Bearer tl_secret" for r in server.received)


def test_progress_line():
    line = progress_line(
        {
            "trial_counts": {"completed": 3, "failed": 1, "running": 2},
            "limits": {"max_trials": 8},
            "best_value": 0.25,
            "state": "running",
        },
        width=8,
    )
    assert line == "[####----] 4/8 trials  running 2  best 0.25  running"


def test_ask_waits_while_every_slot_is_taken():
    trial = {"id": 3, "study_id": 1, "number": 0, "state": "running", "params": {"x": 1}}
    busy = {"detail": "busy", "field": "limits.max_parallel_trials"}
    with (
        scripted_server(Reply(409, busy, {"Retry-After": "0"}), Reply(201, trial)) as server,
        Client(server.url) as client,
    ):
        study = Study(client, {"id": 1, "name": "s", "state": "running"})
        assert study.ask(wait_s=5).params == {"x": 1}
        server.replies.append(Reply(409, busy, {"Retry-After": "2"}))
        with pytest.raises(TunelabError) as error:
            study.ask()
        assert error.value.retry_after == 2.0 and error.value.status_code == 409


def test_a_busy_database_is_asked_again():
    busy = Reply(503, {"detail": "busy", "field": "database"}, {"Retry-After": "0"})
    study = Reply(200, {"id": 1, "name": "s", "state": "running"})
    with scripted_server(busy, study) as server:
        with Client(server.url) as client:
            assert client.study(1).name == "s"
        server.replies.append(busy)
        with Client(server.url, retry_for_s=0) as client, pytest.raises(TunelabError) as error:
            client.study(1)
    assert error.value.status_code == 503 and error.value.field == "database"
    assert len(server.received) == 3


def test_an_unreachable_server_is_one_error_naming_it():
    url = f"http://127.0.0.1:{closed_port()}"
    with Client(url, retry_for_s=0.3) as client, pytest.raises(Unreachable) as error:
        client.studies()
    assert error.value.detail.startswith(f"cannot reach {url}: ")
