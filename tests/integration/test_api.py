"""The REST API through the test client: every endpoint, every format, every kind of refusal."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.apps import apps
from django.contrib.staticfiles import finders
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cluster.core import topology as topo
from cluster.devserver.children import free_port
from cluster.engine.store import Store
from snapshots import services
from snapshots.api import exports
from snapshots.models import Run, Snapshot, Topology
from tests.integration.test_api_support import (
    live_cluster,
    make_finished_snapshot,
    make_run,
    make_topology,
    make_user,
    token_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff() -> APIClient:
    return token_client(make_user("staff"))


@pytest.fixture
def viewer() -> APIClient:
    return token_client(make_user("viewer"))


@pytest.fixture
def cluster(redis_url: str) -> Iterator[None]:
    with live_cluster():
        yield


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- topologies ---------------------------------------------------------------------------


def test_a_topology_round_trips_in_the_cli_json(staff: APIClient) -> None:
    data = topo.ring(4, name="ring4")
    created = staff.post("/api/topologies/", data, format="json")
    assert created.status_code == 201, created.json()
    got = staff.get(f"/api/topologies/{created.json()['id']}/").json()
    assert {k: got[k] for k in ("name", "workload", "processes", "channels")} == data
    assert (got["process_count"], got["channel_count"]) == (4, 4)
    assert Topology.objects.get(name="ring4").to_dict() == data


def test_the_list_shows_counts_not_graphs(staff: APIClient) -> None:
    make_topology("ring3")
    page = staff.get("/api/topologies/").json()
    assert page["count"] == 1
    (row,) = page["results"]
    assert row["name"] == "ring3" and (row["process_count"], row["channel_count"]) == (3, 6)
    assert "processes" not in row


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"processes": [{"name": "p1", "balance": 1}], "channels": []}, "at least 2 processes"),
        ({"channels": [["p1", "p1"], ["p1", "p2"], ["p2", "p1"]]}, "p1→p1 is a self-loop"),
        ({"channels": [["p1", "p2"], ["p1", "p2"], ["p2", "p1"]]}, "p1→p2 is defined twice"),
        ({"channels": [["p1", "p2"]]}, "p2 cannot reach p1"),
        ({"processes": [{"name": "p1", "balance": -5}, {"name": "p2", "balance": 1}]}, "must not be negative"),
        ({"processes": [{"name": "p1", "balance": "lots"}, {"name": "p2", "balance": 1}]}, "whole number"),
        ({"processes": [{"name": "p1", "balance": 2**40}, {"name": "p2", "balance": 1}]}, "at most"),
        ({"workload": "token"}, "exactly one token"),
        ({"processes": [{"name": "", "balance": 1}, {"name": "p2", "balance": 1}]}, "name is empty"),
        ({"processes": [{"name": "p" * 65, "balance": 1}, {"name": "p2", "balance": 1}]}, "longer than 64"),
        ({"processes": [{"name": "p1", "balance": 1}, {"name": "p1", "balance": 1}]}, "used twice"),
        ({"channels": [["p1", "p9"], ["p9", "p1"]]}, "unknown process p9"),
        ({"processes": "p1,p2"}, "processes must be a list"),
        ({"name": 0}, "name: Not a valid string."),
    ],
)
def test_a_bad_topology_is_refused_naming_the_problem(staff: APIClient, change: dict[str, Any], problem: str) -> None:
    data = {
        "name": "bad",
        "workload": "bank",
        "processes": [{"name": "p1", "balance": 1}, {"name": "p2", "balance": 1}],
        "channels": [["p1", "p2"], ["p2", "p1"]],
        **change,
    }
    response = staff.post("/api/topologies/", data, format="json")
    assert response.status_code == 400
    assert any(problem in p for p in response.json()["problems"]), response.json()
    assert problem in response.json()["detail"]
    assert not Topology.objects.filter(name="bad").exists()


def test_a_duplicate_name_is_refused(staff: APIClient) -> None:
    make_topology("ring3")
    response = staff.post("/api/topologies/", topo.ring(3, name="ring3"), format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "a topology named 'ring3' already exists"


def test_replacing_a_topology_keeps_its_id_and_its_runs(staff: APIClient) -> None:
    topology = make_topology("ring3")
    run = make_run(topology)
    response = staff.put(f"/api/topologies/{topology.pk}/", topo.complete(4, name="ring3"), format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["channel_count"] == 12
    run.refresh_from_db()
    assert run.topology_id == topology.pk and len(run.spec["processes"]) == 3  # the run keeps what it ran


def test_a_patch_changes_only_what_it_gives(staff: APIClient) -> None:
    topology = make_topology("ring3")
    response = staff.patch(f"/api/topologies/{topology.pk}/", {"description": "three"}, format="json")
    assert response.status_code == 200
    assert response.json()["description"] == "three" and response.json()["channel_count"] == 6
    refused = staff.patch(f"/api/topologies/{topology.pk}/", {"workload": "token"}, format="json")
    assert refused.status_code == 400 and "exactly one token" in refused.json()["detail"]


def test_a_topology_with_runs_cannot_be_deleted(staff: APIClient) -> None:
    topology = make_topology("ring3")
    make_run(topology)
    response = staff.delete(f"/api/topologies/{topology.pk}/")
    assert response.status_code == 409
    assert "has runs" in response.json()["detail"]
    assert staff.delete(f"/api/topologies/{make_topology('spare').pk}/").status_code == 204


# --- runs ---------------------------------------------------------------------------------


def test_an_operator_starts_pauses_resumes_and_stops_a_run(cluster: None) -> None:
    topology = make_topology("ring3")
    client = token_client(make_user("operator"))
    started = client.post("/api/runs/", {"topology": topology.pk, "rate": 5, "seed": 7}, format="json")
    assert started.status_code == 201, started.json()
    run = started.json()
    assert (run["status"], run["rate"], run["seed"], run["process_count"]) == ("running", 5.0, 7, 3)
    assert run["live"]["messages_sent"] == 0 and run["live"]["expected_total"] == 300
    assert started["Location"].endswith(f"/api/runs/{run['id']}/")
    for verb, status in (("pause", "paused"), ("resume", "running"), ("stop", "stopped")):
        response = client.post(f"/api/runs/{run['id']}/{verb}/")
        assert response.status_code == 200 and response.json()["status"] == status
    again = client.post(f"/api/runs/{run['id']}/resume/")
    assert again.status_code == 400 and "start a new run" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body_", "problem"),
    [
        ({}, "topology: This field is required."),
        ({"topology": 999}, "topology: no topology with id 999"),
        ({"topology": 2**70}, "topology: Ensure this value is less than or equal to"),
        ({"topology": "ring3"}, "topology: A valid integer is required."),
        ({"topology": True}, "topology: A valid integer is required."),
        ({"topology": "ID", "rate": "5"}, "rate: A valid number is required."),
        ({"topology": "ID", "rate": 0}, "rate must be above 0"),
        ({"topology": "ID", "rate": "fast"}, "rate: A valid number is required."),
        ({"topology": "ID", "workload": "chess"}, 'workload: "chess" is not a valid choice.'),
        ({"topology": "ID", "seed": -1}, "seed: Ensure this value is greater than or equal to 0."),
    ],
)
def test_a_bad_start_says_what_is_wrong(cluster: None, body_: dict[str, Any], problem: str) -> None:
    topology = make_topology("ring3")
    if body_.get("topology") == "ID":
        body_ = {**body_, "topology": topology.pk}
    response = token_client(make_user("operator")).post("/api/runs/", body_, format="json")
    assert response.status_code == 400
    assert problem in response.json()["detail"], response.json()


def test_a_run_needs_a_live_cluster(redis_url: str, own_redis: bool) -> None:
    if not own_redis:
        pytest.skip("needs a Redis with no worker heartbeat: the bundled one")
    services.store().redis.delete("cutline:workers")
    response = token_client(make_user("operator")).post("/api/runs/", {"topology": make_topology().pk}, format="json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Cutline is not running")
    assert not Run.objects.exists()


def test_run_list_is_newest_first_with_a_cursor(viewer: APIClient) -> None:
    topology = make_topology()
    runs = [make_run(topology) for _ in range(3)]
    first = viewer.get("/api/runs/?page_size=2").json()
    assert [r["id"] for r in first["results"]] == [runs[2].pk, runs[1].pk]
    second = viewer.get(first["next"]).json()
    assert [r["id"] for r in second["results"]] == [runs[0].pk] and second["next"] is None


def test_run_detail_has_live_counters(viewer: APIClient, redis_url: str) -> None:
    run = make_run(make_topology())
    detail = viewer.get(f"/api/runs/{run.pk}/").json()
    assert detail["topology_name"] == "ring3" and detail["live"]["snapshots"] == {
        "running": 0,
        "complete": 0,
        "failed": 0,
    }


# --- snapshots ----------------------------------------------------------------------------


def test_an_operator_triggers_a_snapshot_at_a_process(cluster: None) -> None:
    client = token_client(make_user("operator"))
    run = client.post("/api/runs/", {"topology": make_topology().pk}, format="json").json()
    response = client.post(f"/api/runs/{run['id']}/snapshots/", {"initiator": "p2"}, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["initiator"], response.json()["status"]) == ("p2", "running")
    assert response["Location"].endswith(f"/api/snapshots/{response.json()['id']}/")
    unknown = client.post(f"/api/runs/{run['id']}/snapshots/", {"initiator": "p9"}, format="json")
    assert unknown.status_code == 400 and "has no process 'p9'" in unknown.json()["detail"]
    listed = client.get(f"/api/runs/{run['id']}/snapshots/").json()
    assert [s["initiator"] for s in listed["results"]] == ["p2"]


def test_a_snapshot_detail_is_the_export_shape(viewer: APIClient) -> None:
    snapshot = make_finished_snapshot(make_run(make_topology()))
    response = viewer.get(f"/api/snapshots/{snapshot.pk}/")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(Snapshot.objects.get(pk=snapshot.pk).to_dict()))
    assert response.json()["verdict"]["consistent"] and response.json()["verdict"]["conserved"]


def test_a_snapshot_as_csv_has_a_row_per_record_and_per_message(viewer: APIClient) -> None:
    snapshot = make_finished_snapshot(make_run(make_topology()), in_flight=2)
    response = viewer.get(f"/api/snapshots/{snapshot.pk}/?format=csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert f'filename="snapshot-{snapshot.pk}.csv"' in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert [r["kind"] for r in rows] == ["process"] * 3 + ["message"] * 2
    p1 = rows[0]
    assert (p1["process"], json.loads(p1["state"]), json.loads(p1["sent"])) == (
        "p1",
        {"balance": 80},
        {"p2": 2, "p3": 0},
    )
    assert [(r["src"], r["dst"], r["seq"], json.loads(r["payload"])) for r in rows[3:]] == [
        ("p1", "p2", "1", {"amount": 10}),
        ("p1", "p2", "2", {"amount": 10}),
    ]


def test_the_accept_header_picks_the_format_too(viewer: APIClient) -> None:
    snapshot = make_finished_snapshot(make_run(make_topology()))
    response = viewer.get(f"/api/snapshots/{snapshot.pk}/", HTTP_ACCEPT="application/x-ndjson")
    assert response["Content-Type"].startswith("application/x-ndjson")
    (line,) = body(response).decode().splitlines()
    assert json.loads(line)["id"] == snapshot.pk


def test_history_filters_by_run_status_initiator_and_time(viewer: APIClient) -> None:
    topology = make_topology()
    run_a, run_b = make_run(topology), make_run(topology)
    a1 = make_finished_snapshot(run_a, "p1")
    a2 = make_finished_snapshot(run_a, "p2")
    b1 = make_finished_snapshot(run_b, "p1")
    Snapshot.objects.filter(pk=a2.pk).update(status="failed", reason="timed out")
    Snapshot.objects.filter(pk=a1.pk).update(started_at="2020-01-01T00:00:00Z")

    def ids(query: str) -> list[int]:
        response = viewer.get(f"/api/snapshots/?{query}")
        assert response.status_code == 200, response.json()
        return [s["id"] for s in response.json()["results"]]

    assert ids("") == [b1.pk, a2.pk, a1.pk]
    assert ids(f"run={run_a.pk}") == [a2.pk, a1.pk]
    assert ids("status=failed") == [a2.pk]
    assert ids("initiator=p1") == [b1.pk, a1.pk]
    assert ids("started_before=2021-01-01T00:00:00Z") == [a1.pk]
    assert ids(f"started_after=2021-01-01T00:00:00Z&run={run_a.pk}") == [a2.pk]
    assert ids(f"run={run_b.pk}&status=complete&initiator=p1") == [b1.pk]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ("run=abc", "run: A valid integer is required."),
        ("run=99999999999999999999999", "run: Ensure this value is less than or equal to"),
        ("status=done", 'status: "done" is not a valid choice.'),
        ("started_after=yesterday", "started_after: Datetime has wrong format."),
        ("initiator=" + "x" * 65, "initiator: Ensure this field has no more than 64 characters."),
        ("initiator=%00", "initiator: Null characters are not allowed."),
    ],
)
def test_a_bad_filter_says_what_is_wrong(viewer: APIClient, query: str, problem: str) -> None:
    response = viewer.get(f"/api/snapshots/?{query}")
    assert response.status_code == 400
    assert problem in response.json()["detail"]


def test_a_bad_cursor_is_a_json_404(viewer: APIClient) -> None:
    response = viewer.get("/api/snapshots/?cursor=garbage")
    assert response.status_code == 404 and response.json()["detail"] == "Invalid cursor"


def test_the_whole_history_streams_as_ndjson_in_constant_queries_per_snapshot(viewer: APIClient) -> None:
    run = make_run(make_topology())
    snapshots = [make_finished_snapshot(run) for _ in range(2 * exports.BATCH + 5)]
    with CaptureQueriesContext(connection) as queries:
        response = viewer.get("/api/snapshots/?format=ndjson")
        assert response.streaming  # nothing is read before the body is consumed
        lines = body(response).decode().splitlines()
    assert [json.loads(line)["id"] for line in lines] == [s.pk for s in snapshots]  # oldest first
    assert json.loads(lines[0]) == json.loads(json.dumps(snapshots[0].to_dict()))
    # A short query per batch of snapshots and two per snapshot (its records): never
    # one query holding everything.
    batch_queries = [q for q in queries.captured_queries if 'FROM "snapshots_snapshot"' in q["sql"]]
    assert len(batch_queries) == 3
    assert all("LIMIT 100" in q["sql"] for q in batch_queries)
    assert response["Content-Disposition"] == 'attachment; filename="snapshots.ndjson"'


def test_the_whole_history_streams_as_csv_with_filters(viewer: APIClient) -> None:
    topology = make_topology()
    run_a, run_b = make_run(topology), make_run(topology)
    make_finished_snapshot(run_a)
    make_finished_snapshot(run_b)
    response = viewer.get(f"/api/snapshots/?format=csv&run={run_b.pk}")
    rows = list(csv.reader(io.StringIO(body(response).decode())))
    assert rows[0] == exports.CSV_COLUMNS
    assert {r[1] for r in rows[1:]} == {str(run_b.pk)} and len(rows) == 1 + 3 + 1


def test_under_asgi_the_stream_is_an_async_iterator() -> None:
    # Daphne serves Django over ASGI, where a plain iterator would be read whole first.
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    user = make_user("viewer")
    snapshot = make_finished_snapshot(make_run(make_topology()))

    async def fetch() -> tuple[bool, bytes]:
        client = AsyncClient()
        await client.aforce_login(user)
        response = await client.get("/api/snapshots/?format=ndjson")
        return response.is_async, b"".join([chunk async for chunk in response.streaming_content])

    is_async, content = async_to_sync(fetch)()
    assert is_async and json.loads(content)["id"] == snapshot.pk


def test_an_unknown_format_is_refused_in_json(viewer: APIClient) -> None:
    snapshot = make_finished_snapshot(make_run(make_topology()))
    response = viewer.get(f"/api/snapshots/{snapshot.pk}/?format=xml")
    assert response.status_code == 406
    assert response.json()["detail"] == "this endpoint serves these formats: json, csv, ndjson"


def test_errors_are_json_even_when_csv_was_asked(viewer: APIClient) -> None:
    response = viewer.get("/api/snapshots/?format=csv&status=done")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"


# --- events -------------------------------------------------------------------------------

EVENTS = [
    {"kind": "send", "process": "p1", "peer": "p2", "seq": 1, "clock": {"p1": 1}},
    {"kind": "initiate", "process": "p1", "snapshot": 1, "clock": {"p1": 1}},
    {"kind": "record", "process": "p1", "snapshot": 1, "clock": {"p1": 1}},
    {"kind": "marker_send", "process": "p1", "peer": "p2", "seq": 2, "snapshot": 1, "clock": {"p1": 1}},
    {"kind": "receive", "process": "p2", "peer": "p1", "seq": 1, "clock": {"p1": 1, "p2": 1}},
    {"kind": "marker_receive", "process": "p2", "peer": "p1", "seq": 2, "snapshot": 1, "clock": {"p1": 1, "p2": 1}},
    {"kind": "send", "process": "p2", "peer": "p1", "seq": 1, "clock": {"p1": 1, "p2": 2}},
]
SHIVIZ_LINE = re.compile(r"(?P<event>.*)\n(?P<host>\S*) (?P<clock>{.*})\n")  # SHIVIZ_REGEX, Python's spelling


def log_events(run: Run, events: list[dict[str, Any]]) -> None:
    key = f"cutline:run:{run.pk}:events"
    store = services.store()
    store.redis.delete(key)
    store.redis.lpush(key, *(json.dumps(e) for e in events))  # newest first, as commit_step keeps it


def test_events_come_oldest_first_with_their_clocks(viewer: APIClient, redis_url: str) -> None:
    run = make_run(make_topology())
    log_events(run, EVENTS)
    try:
        response = viewer.get(f"/api/runs/{run.pk}/events/?limit=3")
        assert response.status_code == 200
        assert response.json() == {"run": run.pk, "events": EVENTS[-3:]}
    finally:
        services.store().delete_run(run.pk, run.process_names)


def test_events_in_shiviz_format_follow_shivizs_clock_rules(viewer: APIClient, redis_url: str) -> None:
    run = make_run(make_topology())
    log_events(run, EVENTS)
    try:
        response = viewer.get(f"/api/runs/{run.pk}/events/?format=shiviz")
    finally:
        services.store().delete_run(run.pk, run.process_names)
    assert response.status_code == 200 and response["X-ShiViz-Regex"] == exports.SHIVIZ_REGEX
    text = response.content.decode()
    parsed = [(m["event"], m["host"], json.loads(m["clock"])) for m in SHIVIZ_LINE.finditer(text)]
    assert "".join(m.group(0) for m in SHIVIZ_LINE.finditer(text)) == text  # nothing left unparsed
    assert [p[0].split()[0] for p in parsed] == [e["kind"] for e in EVENTS]
    assert [(host, clock) for _, host, clock in parsed] == [
        ("p1", {"p1": 1}),
        ("p1", {"p1": 2}),
        ("p1", {"p1": 3}),
        ("p1", {"p1": 4}),
        ("p2", {"p1": 1, "p2": 1}),  # the receive of p1's send 1
        ("p2", {"p1": 4, "p2": 2}),  # the marker's receive: after p1's marker send
        ("p2", {"p1": 4, "p2": 3}),
    ]
    assert parsed[3][0] == 'marker_send peer=p2 seq=2 snapshot=1 app_clock={"p1":1}'


def test_shiviz_clocks_start_at_1_even_when_the_log_was_cut(viewer: APIClient, redis_url: str) -> None:
    run = make_run(make_topology())
    log_events(run, EVENTS)
    try:
        text = viewer.get(f"/api/runs/{run.pk}/events/?format=shiviz&limit=3").content.decode()
    finally:
        services.store().delete_run(run.pk, run.process_names)
    # The marker's send is cut off: its receive is a local event of p2.
    assert [json.loads(m["clock"]) for m in SHIVIZ_LINE.finditer(text)] == [{"p2": 1}, {"p2": 2}, {"p2": 3}]


def test_a_bad_limit_says_what_is_wrong(viewer: APIClient) -> None:
    run = make_run(make_topology())
    response = viewer.get(f"/api/runs/{run.pk}/events/?limit=0")
    assert (
        response.status_code == 400
        and "limit: Ensure this value is greater than or equal to 1." in response.json()["detail"]
    )


def test_without_redis_a_run_shows_no_counters_and_its_events_are_a_503(
    viewer: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run(make_topology())
    gone = Store.from_url(f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setattr(services, "store", lambda: gone)
    detail = viewer.get(f"/api/runs/{run.pk}/")
    assert detail.status_code == 200 and detail.json()["live"] is None
    events = viewer.get(f"/api/runs/{run.pk}/events/?format=shiviz")
    assert events.status_code == 503 and events["Content-Type"] == "application/json"
    assert events.json()["detail"].startswith("cannot reach the runtime state store (Redis)")


# --- everything else ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/99/",
        "/api/snapshots/99/",
        "/api/topologies/99/",
        "/api/runs/99/events/",
        "/api/nothing/",
        "/api/runs/123456789012345678901234567890/",
    ],
)
def test_unknown_ids_and_paths_are_json_404s(viewer: APIClient, path: str) -> None:
    response = viewer.get(path)
    assert response.status_code == 404 and "detail" in response.json()


def test_malformed_json_is_a_400(staff: APIClient) -> None:
    response = staff.generic("POST", "/api/topologies/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


def test_a_form_body_is_a_415(staff: APIClient) -> None:
    response = staff.post("/api/topologies/", {"name": "x"})
    assert response.status_code == 415 and "Unsupported media type" in response.json()["detail"]


def test_the_api_root_lists_the_endpoints() -> None:
    links = APIClient().get("/api/").json()
    assert links["snapshots"].endswith("/api/snapshots/") and links["docs"].endswith("/api/docs/")


def test_the_openapi_schema_is_valid_and_complete(tmp_path: Any) -> None:
    out = tmp_path / "schema.yaml"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--custom-settings",
        "snapshots.api.urls.SCHEMA_SETTINGS",
        "--file",
        str(out),
    )
    schema = APIClient().get("/api/schema/?format=json").json()
    assert {"/api/topologies/", "/api/runs/{id}/snapshots/", "/api/snapshots/{id}/", "/api/runs/{id}/events/"} <= set(
        schema["paths"]
    )
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def test_the_interactive_api_page_loads_nothing_from_the_internet() -> None:
    # Needs config/settings.py: "drf_spectacular_sidecar" in INSTALLED_APPS and
    # SPECTACULAR_SETTINGS pointing Swagger UI at it ("SIDECAR").
    assert apps.is_installed("drf_spectacular_sidecar"), "the bundled Swagger UI assets are not installed"
    html = APIClient().get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    assert not [s for s in sources if re.match(r"(https?:)?//", s)], sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), f"{source} is not among the static files"
