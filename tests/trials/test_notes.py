"""Notes on studies and trials, tags on trials: limits (422 naming the field), what the
listings carry, the tag filter, the live note, no lifecycle change, export and import
(with several objectives' values), the CSV/JSON export and the client's dataframe."""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.core import notify
from app.db.session import Database
from app.studies.models import Study
from app.trials.models import Trial
from tests.api.helpers import API, ask, create_study, tell
from tests.fixtures.studies import study_body

NOTE = "# Why this run\n\nLR **too high**: see `loss` after step 3.\n"


def patch_trial(client: TestClient, trial_id: int, **body: Any) -> Any:
    return client.patch(f"{API}/trials/{trial_id}", json=body)


@pytest.fixture
def study_with_trials(client: TestClient) -> tuple[dict, list[dict]]:
    study = create_study(client, limits={"max_trials": 10, "max_parallel_trials": 10})
    trials = [ask(client, study["id"]) for _ in range(3)]
    tell(client, trials[0]["id"], value=0.5)
    return study, trials


def test_trial_notes_and_tags_are_set_read_and_listed_lean(client, study_with_trials):
    study, trials = study_with_trials
    tid = trials[0]["id"]
    response = patch_trial(
        client, tid, notes=NOTE, tags=["  baseline ", "lr-sweep", "baseline", "régime 2"]
    )
    assert response.status_code == 200, response.text
    read = response.json()
    assert read["notes"] == NOTE and read["tags"] == ["baseline", "lr-sweep", "régime 2"]
    assert read["has_notes"] is True and read["notes_updated_by"] == "anonymous"
    assert read["notes_updated_at"] is not None and read["state"] == "completed"

    # Only tags: the note stays; only notes: the tags stay.
    assert patch_trial(client, tid, tags=["lr-sweep"]).json()["notes"] == NOTE
    assert patch_trial(client, tid, notes=NOTE + "more").json()["tags"] == ["lr-sweep"]
    got = client.get(f"{API}/trials/{tid}").json()
    assert got["notes"] == NOTE + "more" and got["tags"] == ["lr-sweep"]

    # A listing carries tags and the note's first characters, never the note.
    long_note = "x" * 5000
    patch_trial(client, trials[1]["id"], notes=long_note)
    items = client.get(f"{API}/studies/{study['id']}/trials").json()["items"]
    by_id = {t["id"]: t for t in items}
    assert all("notes" not in t for t in items)
    assert by_id[tid]["tags"] == ["lr-sweep"] and by_id[tid]["has_notes"] is True
    assert by_id[tid]["notes_excerpt"] == (NOTE + "more")[:160]
    assert by_id[trials[1]["id"]]["notes_excerpt"] == "x" * 160
    assert by_id[trials[2]["id"]]["has_notes"] is False
    assert by_id[trials[2]["id"]]["tags"] == []

    # "" removes the note, [] the tags.
    cleared = patch_trial(client, tid, notes="", tags=[]).json()
    assert cleared["notes"] == "" and cleared["tags"] == [] and cleared["has_notes"] is False


BEYOND_THE_LIMITS = [
    ({"notes": "é" * 32768 + "x"}, "notes"),  # 65,537 bytes of UTF-8
    ({"tags": [f"t{i}" for i in range(33)]}, "tags"),
    ({"tags": ["ok", "a,b"]}, "tags.1"),
    ({"tags": ["x" * 65]}, "tags.0"),
    ({"tags": ["ok", "   "]}, "tags.1"),
    ({"tags": ["bad\ttab"]}, "tags.0"),
    ({"tags": "baseline"}, "tags"),
    ({"notes": 5}, "notes"),
    ({"note": "typo"}, "note"),
    ({"notes": "a\x00b"}, "notes"),
    ({"tags": ["nul\x00"]}, "tags.0"),
]


def test_tags_added_and_removed_at_once_by_several_people_all_count(client, study_with_trials):
    _, trials = study_with_trials
    tid = trials[0]["id"]
    patch_trial(client, tid, tags=["baseline", "old"])
    names = [f"person-{i}" for i in range(8)]
    with ThreadPoolExecutor(len(names)) as pool:
        answers = list(pool.map(lambda n: patch_trial(client, tid, add_tags=[n]), names))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    tags = client.get(f"{API}/trials/{tid}").json()["tags"]
    assert tags[:2] == ["baseline", "old"] and sorted(tags[2:]) == names

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda n: patch_trial(client, tid, remove_tags=[n]), ["old", "person-3"]))
    tags = client.get(f"{API}/trials/{tid}").json()["tags"]
    assert "old" not in tags and "person-3" not in tags and len(tags) == 8
    # One call may add and remove; an absent tag is ignored; a present one stays once.
    read = patch_trial(client, tid, add_tags=["baseline", " new "], remove_tags=["nope"]).json()
    assert read["tags"][-1] == "new" and read["tags"].count("baseline") == 1

    both = patch_trial(client, tid, tags=["a"], add_tags=["b"])
    assert both.status_code == 422 and both.json()["field"] == "add_tags"
    full = patch_trial(client, tid, add_tags=[f"t{i}" for i in range(30)])
    assert full.status_code == 422 and full.json()["field"] == "add_tags"
    assert client.get(f"{API}/trials/{tid}").json()["tags"] == read["tags"]


def test_trial_limits_answer_422_naming_the_field(client, study_with_trials):
    _, trials = study_with_trials
    for body, field in BEYOND_THE_LIMITS:
        response = patch_trial(client, trials[0]["id"], **body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["field"] == field, (body, response.json())
    assert client.get(f"{API}/trials/{trials[0]['id']}").json()["tags"] == []


def test_limits_at_the_edge_are_accepted(client, study_with_trials):
    study, trials = study_with_trials
    note = "é" * 32768  # exactly 64 KiB of UTF-8
    tags = [f"t{i:02d}" + "x" * 60 for i in range(32)]  # 32 tags of 64 characters
    read = patch_trial(client, trials[0]["id"], notes=note, tags=tags).json()
    assert read["notes"] == note and read["tags"] == tags
    study_note = client.patch(f"{API}/studies/{study['id']}", json={"notes": note})
    assert study_note.status_code == 200 and study_note.json()["notes"] == note
    too_long = client.patch(f"{API}/studies/{study['id']}", json={"notes": note + "x"})
    assert too_long.status_code == 422 and too_long.json()["field"] == "notes"
    missing = patch_trial(client, 10**9, notes="x")
    assert missing.status_code == 404 and missing.json()["field"] == "trial_id"


def test_study_notes_are_set_read_and_listed(client):
    created = create_study(client, notes="from the body")
    assert created["notes"] == "from the body" and created["notes_updated_at"] is not None
    refused = client.post(f"{API}/studies", json=study_body(notes="x" * 65537))
    assert refused.status_code == 422 and refused.json()["field"] == "notes"
    study = create_study(client)
    assert study["notes"] == "" and study["notes_updated_by"] is None
    response = client.patch(f"{API}/studies/{study['id']}", json={"notes": NOTE})
    assert response.status_code == 200, response.text
    assert response.json()["notes"] == NOTE and response.json()["notes_updated_by"] == "anonymous"
    assert response.json()["state"] == "running" and response.json()["name"] == study["name"]
    assert client.get(f"{API}/studies/{study['id']}").json()["notes"] == NOTE
    listed = client.get(f"{API}/studies").json()["items"]
    assert [s["notes"] for s in listed if s["id"] == study["id"]] == [NOTE]
    # Another field alone leaves the note.
    client.patch(f"{API}/studies/{study['id']}", json={"name": "renamed"})
    assert client.get(f"{API}/studies/{study['id']}").json()["notes"] == NOTE


def test_tag_filter(client, study_with_trials):
    study, trials = study_with_trials
    patch_trial(client, trials[0]["id"], tags=["baseline", "lr-sweep"])
    patch_trial(client, trials[2]["id"], tags=["lr-sweep"])
    patch_trial(client, trials[1]["id"], tags=['quote"d', "lr-sweep-2"])

    def numbers(**params: Any) -> list[int]:
        response = client.get(f"{API}/studies/{study['id']}/trials", params=params)
        assert response.status_code == 200, response.text
        return [t["number"] for t in response.json()["items"]]

    assert numbers(tag="lr-sweep") == [0, 2]
    assert numbers(tag=" baseline ") == [0]
    assert numbers(tag='quote"d') == [1]
    assert numbers(tag="lr") == []
    assert numbers(tag="lr-sweep", state="running") == [2]
    assert numbers(tag="lr-sweep", limit=1, order_by="-number") == [2]
    for bad in ("x" * 65, "a,b", "nul\x00", "   "):
        refused = client.get(f"{API}/studies/{study['id']}/trials", params={"tag": bad})
        assert refused.status_code == 422 and refused.json()["field"] == "tag", bad


def test_annotating_is_no_lifecycle_change_and_is_heard_live(
    client, database: Database, study_with_trials
):
    study, trials = study_with_trials
    running = trials[1]["id"]

    def versions() -> tuple[int, int, Any]:
        with database.session() as session:
            s = session.scalars(select(Study).where(Study.id == study["id"])).one()
            t = session.scalars(select(Trial).where(Trial.id == running)).one()
            return s.history_version, t.history_version, s.updated_at

    before = versions()
    events_before = client.get(f"{API}/trials/{running}/events").json()["items"]
    heard: list[notify.Change] = []
    unsubscribe = notify.subscribe(heard.append)
    try:
        assert patch_trial(client, running, notes="watch me", tags=["live"]).status_code == 200
    finally:
        unsubscribe()
    assert versions() == before
    assert client.get(f"{API}/trials/{running}/events").json()["items"] == events_before
    assert [(c.study_id, c.kind, c.data["trial_id"], c.data["annotated"]) for c in heard] == [
        (study["id"], "trial", running, True)
    ]
    # The trial still runs and is told as usual; its note and tags stay.
    told = tell(client, running, value=0.25)
    assert told["state"] == "completed" and told["tags"] == ["live"]
    assert client.get(f"{API}/trials/{running}").json()["notes"] == "watch me"


def test_export_and_import_keep_notes_tags_and_objective_values(client):
    objectives = [
        {"metric": "acc", "direction": "maximize"},
        {"metric": "latency_ms", "direction": "minimize"},
    ]
    created = client.post(
        f"{API}/studies",
        json={
            "name": "mo",
            "objectives": objectives,
            "constraints": [{"metric": "mem", "op": "<=", "value": 8}],
            "space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
            "limits": {"max_trials": 10},
        },
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    trial = ask(client, sid)
    points = [
        {"name": "acc", "step": 1, "value": 0.9},
        {"name": "latency_ms", "step": 1, "value": 12.0},
        {"name": "mem", "step": 1, "value": 6.0},
    ]
    assert client.post(f"{API}/trials/{trial['id']}/metrics", json=points).status_code == 200
    tell(client, trial["id"])
    client.patch(f"{API}/studies/{sid}", json={"notes": "study **note**"})
    patch_trial(client, trial["id"], notes="trial note", tags=["best", "v2"])

    document = client.get(f"{API}/studies/{sid}/export").json()
    assert document["study"]["notes"] == "study **note**"
    exported = document["trials"][0]
    assert exported["notes"] == "trial note" and exported["tags"] == ["best", "v2"]
    assert exported["values"] == [0.9, 12.0] and exported["constraint_values"] == [6.0]

    imported = client.post(f"{API}/studies/import", json=document)
    assert imported.status_code == 201, imported.text
    assert imported.json()["notes"] == "study **note**"
    new_trial = client.get(f"{API}/studies/{imported.json()['id']}/trials").json()["items"][0]
    assert new_trial["tags"] == ["best", "v2"] and new_trial["values"] == [0.9, 12.0]
    assert new_trial["feasible"] is True and new_trial["is_pareto"] is True
    detail = client.get(f"{API}/trials/{new_trial['id']}").json()
    assert detail["notes"] == "trial note" and detail["notes_updated_by"] == "anonymous"

    # An export written before notes and tags existed still imports, without them.
    for part in [document["study"], *document["trials"]]:
        for key in ("notes", "notes_updated_at", "notes_updated_by", "tags"):
            part.pop(key, None)
    older = client.post(f"{API}/studies/import", json=document)
    assert older.status_code == 201, older.text
    assert older.json()["notes"] == "" and older.json()["notes_updated_at"] is None
    old_trial = client.get(f"{API}/studies/{older.json()['id']}/trials").json()["items"][0]
    assert old_trial["tags"] == [] and old_trial["has_notes"] is False

    # Imported notes and tags keep the API's limits, naming where they broke them.
    document["trials"][0]["tags"] = ["fine", "no,commas"]
    bad = client.post(f"{API}/studies/import", json=document)
    assert bad.status_code == 422 and bad.json()["field"] == "trials.0.tags.1"
    document["trials"][0]["tags"] = []
    document["study"]["notes"] = "x" * 65537
    bad = client.post(f"{API}/studies/import", json=document)
    assert bad.status_code == 422 and bad.json()["field"] == "study.notes"


def test_csv_and_json_exports_and_the_dataframe_have_notes_and_tags(client, study_with_trials):
    study, trials = study_with_trials
    patch_trial(client, trials[0]["id"], notes='multi-line,\n"quoted" NaN', tags=["a", "b c"])
    patch_trial(client, trials[1]["id"], notes="NaN")
    text = client.get(f"{API}/studies/{study['id']}/trials.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0])[-2:] == ["tags", "notes"]
    assert rows[0]["tags"] == "a,b c" and rows[0]["notes"] == 'multi-line,\n"quoted" NaN'
    assert rows[2]["tags"] == "" and rows[2]["notes"] == ""
    json_rows = client.get(f"{API}/studies/{study['id']}/trials.csv?format=json").json()
    assert json_rows[0]["tags"] == ["a", "b c"] and json_rows[2]["tags"] == []

    pytest.importorskip("pandas")
    from tunelab.client import Study as ClientStudy

    class Through:
        """tunelab.client's `request`, answered by the app in this process."""

        def request(self, method: str, path: str, **options: Any) -> Any:
            options.pop("idempotent", None)  # the transport's retry policy
            response = client.request(method, f"{API}{path}", **options)
            assert response.status_code < 400, response.text
            return response.json()

    frame = ClientStudy(Through(), study).dataframe()  # type: ignore[arg-type]
    assert list(frame["tags"]) == [["a", "b c"], [], []]
    assert list(frame["notes"]) == ['multi-line,\n"quoted" NaN', "NaN", ""]

    from tunelab.client import Trial as ClientTrial

    trial = ClientTrial(Through(), trials[2]).update(notes="from the client", tags=["sdk"])  # type: ignore[arg-type]
    assert trial.notes == "from the client" and trial.tags == ["sdk"]
    assert trial.update(tags=[]).notes == "from the client"
