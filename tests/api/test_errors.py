"""The error contract: JSON {"detail", "field"} with a 4xx, never a 500 for bad input."""

from __future__ import annotations

import base64
import json

from tests.api.helpers import API, ask, create_study, tell
from tests.fixtures.studies import study_body

MALFORMED_SPACES = [
    ({"type": "float", "low": 2, "high": 1}, "space.x.low"),
    ({"type": "int", "low": 5, "high": 1}, "space.x.low"),
    ({"type": "float", "low": 0, "high": 1, "scale": "log"}, "space.x.low"),
    ({"type": "float", "low": -1, "high": 1, "scale": "log"}, "space.x.low"),
    ({"type": "int", "low": 0, "high": 8, "scale": "log"}, "space.x.low"),
    ({"type": "categorical", "choices": []}, "space.x.choices"),
    ({"type": "categorical"}, "space.x.choices"),
    ({"type": "categorical", "choices": ["a", "a"]}, "space.x.choices"),
    ({"type": "uniform", "low": 0, "high": 1}, "space.x.type"),
    ({"type": 3}, "space.x.type"),
    ({"low": 0, "high": 1}, "space.x.type"),
    ({"type": "float", "low": 0, "high": 1, "step": 2}, "space.x.step"),
    ({"type": "int", "low": 0, "high": 10, "step": 11}, "space.x.step"),
    ({"type": "float", "low": 0, "high": 1, "step": 0}, "space.x.step"),
    ({"type": "float", "low": 0, "high": 1, "step": -0.5}, "space.x.step"),
    ({"type": "float", "low": 0.1, "high": 1, "scale": "log", "step": 0.1}, "space.x.step"),
    ({"type": "float", "low": 0.5, "high": 1.0, "scale": "reverse_log"}, "space.x.high"),
    ({"type": "float", "low": 0.5, "high": 1.5, "scale": "reverse_log"}, "space.x.high"),
    ({"type": "float", "low": -0.1, "high": 0.9, "scale": "reverse_log"}, "space.x.low"),
    ({"type": "int", "low": 1, "high": 9, "scale": "reverse_log"}, "space.x.scale"),
    ({"type": "float", "low": 0, "high": 1, "scale": "exp"}, "space.x.scale"),
    ({"type": "float", "low": 0, "high": "one"}, "space.x.high"),
    ({"type": "float", "high": 1}, "space.x.low"),
    ({"type": "int", "low": 0.5, "high": 3}, "space.x.low"),
    ({"type": "float", "low": 0, "high": 1, "lo": 0}, "space.x.lo"),
    ({"type": "float", "low": -1e308, "high": 1e308}, "space.x.high"),
    ({"type": "float", "low": 0, "high": 1e300, "step": 1e-300}, "space.x.step"),
    ({"type": "fixed"}, "space.x.value"),
    ("float", "space.x"),
]


def test_malformed_space_is_422_naming_the_field(client):
    # One client for all cases: each case is a single request, the app start is the cost.
    wrong = []
    for spec, field in MALFORMED_SPACES:
        response = client.post(f"{API}/studies", json=study_body(space={"x": spec}))
        body = response.json()
        if response.status_code != 422 or body.get("field") != field or not body.get("detail"):
            wrong.append((spec, field, response.status_code, body))
    assert wrong == []
    assert client.get(f"{API}/studies").json()["total"] == 0


MALFORMED_STUDIES = [
    ({"space": {}}, "space"),
    ({"space": {"a b": {"type": "fixed", "value": 1}}}, "space.a b"),
    ({"name": ""}, "name"),
    ({"objective": {"metric": "loss", "direction": "down"}}, "objective.direction"),
    (
        {"objective": {"metric": "loss", "direction": "minimize", "aggregate": "mean"}},
        "objective.aggregate",
    ),
    ({"limits": {"max_trials": "many"}}, "limits.max_trials"),
    ({"limits": {"max_trials": 0}}, "limits.max_trials"),
    ({"limits": {"max_parallel_trials": 0}}, "limits.max_parallel_trials"),
    ({"limits": {"max_runtime_s": -1}}, "limits.max_runtime_s"),
    ({"limits": {"heartbeat_timeout_s": 0}}, "limits.heartbeat_timeout_s"),
    ({"strategy": {"name": "grid", "grid_points": "x"}}, "strategy.grid_points"),
    ({"strategy": {"name": "grid", "grid_points": 0}}, "strategy.grid_points"),
    ({"strategy": {"name": "random", "seed": -1}}, "strategy.seed"),
    ({"strategy": {"name": "hyperopt"}}, "strategy.name"),
    ({"parent_study_id": 12345}, "parent_study_id"),
    ({"colour": "red"}, "colour"),
]


def test_malformed_study_is_422_naming_the_field(client):
    wrong = []
    for overrides, field in MALFORMED_STUDIES:
        response = client.post(f"{API}/studies", json=study_body(**overrides))
        if response.status_code != 422 or response.json().get("field") != field:
            wrong.append((overrides, field, response.status_code, response.json()))
    assert wrong == []


def test_bad_json_body_is_422_on_the_body(client):
    response = client.post(
        f"{API}/studies", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["field"] == "body"


def _cursor(raw: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(raw).encode()).decode()


FORGED_CURSORS = [
    "!!!",
    "not-base64-at-all",
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    _cursor("abc"),
    _cursor(5),
    _cursor({"a": 1}),
    _cursor([False, 1]),
    _cursor([False, 1, "abc"]),
    _cursor([False, "zz", 1]),
    _cursor([False, [1], {}]),
    _cursor([True, None, None]),
    _cursor([False, 1, 2**70]),
    _cursor(["yes", 1, 1]),
]


def test_forged_cursors_are_422(client):
    study = create_study(client)
    tell(client, ask(client, study["id"])["id"], value=1.0)
    wrong = []
    for order_by in ("number", "-value", "started_at"):
        for cursor in FORGED_CURSORS:
            response = client.get(
                f"{API}/studies/{study['id']}/trials",
                params={"cursor": cursor, "order_by": order_by},
            )
            if response.status_code != 422 or response.json()["field"] != "cursor":
                wrong.append((order_by, cursor, response.status_code, response.text))
    assert wrong == []


BIG = 2**70


OUT_OF_RANGE = [
    ("get", f"/studies/{BIG}", None),
    ("patch", f"/studies/{BIG}", {"name": "x"}),
    ("delete", f"/studies/{BIG}", None),
    ("post", f"/studies/{BIG}/trials", None),
    ("get", f"/studies/{BIG}/trials", None),
    ("get", f"/studies/{BIG}/trials.csv", None),
    ("get", f"/trials/{BIG}", None),
    ("post", f"/trials/{BIG}/complete", {}),
    ("post", f"/trials/{BIG}/metrics", []),
    ("post", f"/trials/{BIG}/heartbeat", None),
    ("get", f"/trials/{BIG}/metrics", None),
    ("get", f"/trials/{BIG}/events", None),
    ("get", f"/studies?offset={BIG}", None),
    ("get", "/studies/abc", None),
    ("get", "/trials/1.5", None),
    ("post", "/studies", {**study_body(), "parent_study_id": BIG}),
]


def test_out_of_range_ids_are_4xx_not_500(client):
    create_study(client)
    wrong = []
    for method, path, body in OUT_OF_RANGE:
        kwargs = {"json": body} if body is not None else {}
        response = getattr(client, method)(f"{API}{path}", **kwargs)
        if not 400 <= response.status_code < 500 or not {"detail", "field"} <= set(response.json()):
            wrong.append((method, path, response.status_code, response.text))
    assert wrong == []


WRONG_TYPES = [
    ("/trials/{trial}/complete", b'{"value": "abc"}', "value"),
    ("/trials/{trial}/complete", b'{"state": "done"}', "state"),
    ("/trials/{trial}/complete", b"[1, 2]", "body"),
    ("/trials/{trial}/complete", b"{", "body"),
    ("/trials/{trial}/metrics", b'{"name": "loss"}', "body"),
    ("/trials/{trial}/metrics", b'[{"name": "loss", "step": 1, "value": "x"}]', "0.value"),
    ("/trials/{trial}/metrics", b'[{"name": "", "step": 1, "value": 1}]', "0.name"),
    ("/trials/{trial}/metrics", b'[{"name": "loss", "step": 1}]', "0.value"),
    ("/studies/{study}/trials", b'"abc"', "body"),
    ("/studies/{study}/trials", b'{"params": []}', "params"),
    ("/studies/{study}/trials", b'{"paramz": {}}', "paramz"),
    ("/studies/{study}/trials", b'{"params": {"lr": 2**70}}', "body"),
]


def test_wrong_types_are_422_naming_the_field(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    wrong = []
    for path, body, field in WRONG_TYPES:
        response = client.post(
            f"{API}{path.format(trial=trial['id'], study=study['id'])}",
            content=body,
            headers={"content-type": "application/json"},
        )
        if response.status_code != 422 or response.json()["field"] != field:
            wrong.append((path, body, response.status_code, response.text))
    assert wrong == []


def test_huge_metric_values_are_kept(client):
    study = create_study(client)
    trial = ask(client, study["id"])
    response = client.post(
        f"{API}/trials/{trial['id']}/metrics",
        content=b'[{"name": "loss", "step": 1, "value": 1e400}]',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 200
    items = client.get(f"{API}/trials/{trial['id']}/metrics").json()["items"]
    assert items[0]["value"] == "Infinity"


def test_unknown_route_and_method_are_json(client):
    missing = client.get(f"{API}/nothing-here")
    assert missing.status_code == 404 and set(missing.json()) == {"detail", "field"}
    wrong = client.put(f"{API}/studies")
    assert wrong.status_code == 405 and set(wrong.json()) == {"detail", "field"}
