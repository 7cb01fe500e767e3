"""Runs through the API: start, pause, resume, stop; the list and a run's detail."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from snapshots import services
from snapshots.models import Restore, Run
from tests.integration.api.support import (
    as_left_by_a_watchpoint,
    make_finished_snapshot,
    make_run,
    make_topology,
    make_user,
    token_client,
)

pytestmark = pytest.mark.django_db


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


def test_a_run_detail_has_its_faults_epoch_restores_and_when_each_property_first_held(viewer: APIClient) -> None:
    run = make_run(make_topology())
    Run.objects.filter(pk=run.pk).update(epoch=1, faults={"p1→p2": {"delay_ms": 50, "reorder": False, "loss": 0.0}})
    first = as_left_by_a_watchpoint(make_finished_snapshot(run))
    as_left_by_a_watchpoint(make_finished_snapshot(run))
    restore = Restore.objects.create(run=run, snapshot=first, epoch=1, replayed_messages=1, dropped_frames=4)
    Restore.objects.filter(pk=restore.pk).update(at=datetime(2030, 1, 2, tzinfo=UTC))

    detail = viewer.get(f"/api/runs/{run.pk}/").json()
    assert detail["epoch"] == 1 and detail["faults"] == {"p1→p2": {"delay_ms": 50, "reorder": False, "loss": 0.0}}
    assert detail["first_holding"] == {"conservation": first.pk}
    assert detail["restores"] == [
        {
            "id": restore.pk,
            "run": run.pk,
            "snapshot": first.pk,
            "epoch": 1,
            "at": "2030-01-02T00:00:00+00:00",
            "replayed_messages": 1,
            "dropped_frames": 4,
        }
    ]
    listed = viewer.get("/api/runs/").json()["results"][0]
    assert (listed["epoch"], listed["faults"]) == (1, detail["faults"])
