"""Snapshots through the API: taking them, each one's detail and exports (JSON, CSV,
NDJSON), the history and its filters, and a run's event log (JSON and ShiViz).

The last test is the whole story on real workers: a staff user generates a topology in
the admin; an operator's script starts a run and takes snapshots with its token; a
viewer's script lists them, downloads one as JSON and CSV, streams the history as NDJSON
and pastes the event log into ShiViz (here: checks it against ShiViz's rules for clocks).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cluster.devserver.children import Child, free_port
from cluster.engine.store import Store
from snapshots import services
from snapshots.api import exports
from snapshots.models import Run, Snapshot, Topology, Watchpoint
from snapshots.presenter import snapshot_export
from tests.integration.api.support import (
    as_left_by_a_watchpoint,
    body,
    forget_runs,
    make_finished_snapshot,
    make_run,
    make_topology,
    make_user,
    token_client,
)
from tests.integration.engine_helpers import SNAPSHOT_WAIT

pytestmark = pytest.mark.django_db


# --- taking snapshots ---------------------------------------------------------------------


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


def test_a_snapshot_is_taken_with_the_algorithm_asked_for(live_run: Run, operator: APIClient) -> None:
    url = f"/api/runs/{live_run.pk}/snapshots/"
    taken = operator.post(url, {"algorithm": "lai-yang", "initiator": "p3"}, format="json")
    assert taken.status_code == 201 and taken.json()["algorithm"] == "lai-yang", taken.json()
    assert operator.post(url, {}, format="json").json()["algorithm"] == "chandy-lamport"
    refused = operator.post(url, {"algorithm": "naive"}, format="json")
    assert refused.status_code == 400 and 'algorithm: "naive" is not a valid choice.' in refused.json()["detail"]
    listed = operator.get(f"/api/snapshots/?run={live_run.pk}&algorithm=lai-yang").json()["results"]
    assert [s["id"] for s in listed] == [taken.json()["id"]]


# --- a snapshot, its exports and the history ----------------------------------------------


def test_a_snapshot_detail_is_the_export_shape(viewer: APIClient) -> None:
    snapshot = make_finished_snapshot(make_run(make_topology()))
    response = viewer.get(f"/api/snapshots/{snapshot.pk}/")
    assert response.status_code == 200
    assert response.json() == json.loads(json.dumps(snapshot_export(Snapshot.objects.get(pk=snapshot.pk))))
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
    assert json.loads(lines[0]) == json.loads(json.dumps(snapshot_export(snapshots[0])))
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


def test_every_export_says_how_the_snapshot_was_taken_and_what_held(viewer: APIClient) -> None:
    run = make_run(make_topology())
    wp = Watchpoint.objects.create(run=run, process="p1", condition="balance < 95", kind="state")
    snapshot = as_left_by_a_watchpoint(make_finished_snapshot(run, in_flight=1), wp)

    as_json = viewer.get(f"/api/snapshots/{snapshot.pk}/").json()
    assert {k: as_json[k] for k in ("algorithm", "epoch", "watchpoint", "trigger")} == {
        "algorithm": "lai-yang",
        "epoch": 2,
        "watchpoint": wp.pk,
        "trigger": "balance = 90",
    }
    assert as_json["properties"]["deadlock"]["holds"] is False
    (line,) = body(viewer.get(f"/api/snapshots/{snapshot.pk}/?format=ndjson")).decode().splitlines()
    assert json.loads(line) == as_json
    summary = viewer.get(f"/api/runs/{run.pk}/snapshots/").json()["results"][0]
    assert (summary["algorithm"], summary["watchpoint"], summary["properties"]) == (
        "lai-yang",
        wp.pk,
        as_json["properties"],
    )

    rows = list(csv.DictReader(io.StringIO(body(viewer.get(f"/api/snapshots/{snapshot.pk}/?format=csv")).decode())))
    assert list(rows[0]) == exports.CSV_COLUMNS
    assert {(r["algorithm"], r["epoch"], r["watchpoint"], r["trigger"]) for r in rows} == {
        ("lai-yang", "2", str(wp.pk), "balance = 90")
    }
    assert {(r["conservation"], r["termination"], r["deadlock"]) for r in rows} == {("true", "", "false")}
    assert [r["kind"] for r in rows] == ["process"] * 3 + ["message"]
    assert all(json.loads(r["received_above"]) == {} for r in rows if r["kind"] == "process")


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


# --- a script reads it all, from real workers ---------------------------------------------


def shiviz_problems(text: str) -> list[str]:
    """What ShiViz would refuse in this log: its clocks must start at 1 per host, go up by 1,
    and point only at events that exist."""
    events = [(m["host"], json.loads(m["clock"])) for m in SHIVIZ_LINE.finditer(text)]
    if "".join(m.group(0) for m in SHIVIZ_LINE.finditer(text)) != text:
        return ["some lines do not match the regular expression"]
    counts: dict[str, int] = defaultdict(int)
    problems = []
    for host, clock in events:
        counts[host] += 1
        if clock.get(host) != counts[host]:
            problems.append(f"{host}'s event {counts[host]} has own time {clock.get(host)}")
    for host, clock in events:
        problems += [
            f"{host} points at {other}:{t}"
            for other, t in clock.items()
            if other != host and not 1 <= t <= counts[other]
        ]
    return problems


def text(response: Any) -> str:
    return b"".join(response.streaming_content).decode()


def test_staff_build_operators_run_and_scripts_read_it_all(cluster_workers: Callable[[int], list[Child]]) -> None:
    cluster_workers(2)
    try:
        admin = Client()
        admin.force_login(make_user("staff"))
        generated = admin.post(
            "/admin/snapshots/topology/generate/",
            {"kind": "ring2", "processes": 5, "workload": "bank", "balance": 100, "name": "demo-ring"},
        )
        assert generated.status_code == 302
        topology = Topology.objects.get(name="demo-ring")

        operator = token_client(make_user("operator"))
        run = operator.post("/api/runs/", {"topology": topology.pk, "rate": 20}, format="json").json()
        taken = []
        for initiator in ("p1", "p3"):
            response = operator.post(f"/api/runs/{run['id']}/snapshots/", {"initiator": initiator}, format="json")
            assert response.status_code == 201, response.json()
            taken.append(response.json()["id"])
        for snapshot_id in taken:
            snapshot = services.wait_for_snapshot(snapshot_id, SNAPSHOT_WAIT)
            assert snapshot.status == Snapshot.Status.COMPLETE, snapshot.reason

        script = token_client(make_user("viewer"))
        listed = script.get(f"/api/snapshots/?run={run['id']}&status=complete").json()["results"]
        assert sorted(s["id"] for s in listed) == sorted(taken)
        assert all(s["verdict"]["consistent"] and s["verdict"]["conserved"] for s in listed)

        one = script.get(f"/api/snapshots/{taken[0]}/").json()
        assert {p["process"] for p in one["processes"]} == {f"p{i}" for i in range(1, 6)}
        assert len(one["channels"]) == 10 and one["verdict"]["recorded_total"] == 500

        rows = list(csv.DictReader(io.StringIO(text(script.get(f"/api/snapshots/{taken[0]}/?format=csv")))))
        messages = sum(len(c["messages"]) for c in one["channels"])
        assert [r["kind"] for r in rows] == ["process"] * 5 + ["message"] * messages

        lines = [json.loads(line) for line in text(script.get("/api/snapshots/?format=ndjson")).splitlines()]
        assert [s["id"] for s in lines] == sorted(taken) and lines[0] == one

        log = script.get(f"/api/runs/{run['id']}/events/?format=shiviz&limit=5000").content.decode()
        assert "marker_send" in log and "marker_receive" in log
        assert shiviz_problems(log) == []

        stopped = operator.post(f"/api/runs/{run['id']}/stop/")
        assert stopped.json()["status"] == "stopped" and stopped.json()["live"]["snapshots"]["complete"] == 2
    finally:
        forget_runs()


def test_the_shiviz_rule_check_itself_catches_a_bad_log() -> None:
    good = 'send\np1 {"p1":1}\nreceive\np2 {"p1":1,"p2":1}\n'
    assert shiviz_problems(good) == []
    assert shiviz_problems('send\np1 {"p1":2}\n') == ["p1's event 1 has own time 2"]
    assert shiviz_problems('receive\np2 {"p1":1,"p2":1}\n') == ["p2 points at p1:1"]
