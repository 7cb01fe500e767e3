"""Topologies through the API: create, list, validate, replace, patch, delete; and what
listing them costs, whatever their size (the runs page lists them too).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from cluster.core import topology as topo
from snapshots.models import Topology
from tests.integration.api.support import make_run, make_topology, make_user, token_client

pytestmark = pytest.mark.django_db


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


# --- counts, whatever the size ------------------------------------------------------------
# Listing topologies costs the same whatever their size: counts by subquery, no join.
# Counting processes and channels with two ``Count`` annotations joined every process row
# of a topology with every channel row (a 5,000-process ring made the runs page take 75 s).
# The runs page, the API's topology list and the admin's all list them with their counts.


def topology_queries(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if 'FROM "snapshots_topology"' in q["sql"]]


def test_counts_are_right_for_every_topology() -> None:
    make_topology("ring3", 3)
    make_topology("ring40", 40)
    counts = {t.name: (t.process_count, t.channel_count) for t in Topology.objects.with_counts()}
    # A two-way ring of n has n processes and 2n channels.
    assert counts["ring3"] == (3, 6)
    assert counts["ring40"] == (40, 80)


def test_a_topology_without_processes_counts_zero() -> None:
    Topology.objects.create(name="empty")
    assert Topology.objects.with_counts().values_list("process_count", "channel_count").get(name="empty") == (0, 0)


def test_the_api_list_counts_without_joining_processes_and_channels() -> None:
    make_topology("ring40", 40)
    client = token_client(make_user("viewer"))
    with CaptureQueriesContext(connection) as queries:
        answer = client.get("/api/topologies/")
    assert answer.status_code == 200
    row = next(r for r in answer.json()["results"] if r["name"] == "ring40")
    assert (row["process_count"], row["channel_count"]) == (40, 80)
    (listing,) = [sql for sql in topology_queries(queries) if "process_count" in sql]
    assert "JOIN" not in listing.upper()


def test_the_runs_page_lists_topologies_in_one_query_whatever_their_size(client: object) -> None:
    make_topology("ring3", 3)
    client.force_login(make_user("viewer"))  # type: ignore[attr-defined]
    with CaptureQueriesContext(connection) as small:
        assert client.get("/").status_code == 200  # type: ignore[attr-defined]
    make_topology("ring200", 200)
    with CaptureQueriesContext(connection) as large:
        page = client.get("/")  # type: ignore[attr-defined]
    assert page.status_code == 200
    assert "ring200" in page.content.decode()
    assert len(large.captured_queries) == len(small.captured_queries)
    assert all("JOIN" not in sql.upper() for sql in topology_queries(large))
