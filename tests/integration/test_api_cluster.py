"""The issue's "done means", on real workers: build in the admin, run and read through the API.

A staff user generates a topology in the admin; an operator's script starts a run and
takes snapshots with its token; a viewer's script lists them, downloads one as JSON and
CSV, streams the history as NDJSON and pastes the event log into ShiViz (here: checks
it against ShiViz's rules for clocks).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from django.test import Client

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Snapshot, Topology
from tests.integration.test_api_support import forget_runs, make_user, token_client

SNAPSHOT_WAIT = 60.0
SHIVIZ = re.compile(r"(?P<event>.*)\n(?P<host>\S*) (?P<clock>{.*})\n")


def shiviz_problems(text: str) -> list[str]:
    """What ShiViz would refuse in this log: its clocks must start at 1 per host, go up by 1,
    and point only at events that exist."""
    events = [(m["host"], json.loads(m["clock"])) for m in SHIVIZ.finditer(text)]
    if "".join(m.group(0) for m in SHIVIZ.finditer(text)) != text:
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
