"""What a hostile user tried against the API, each refused with a clear 4xx in JSON, no 500.

Crafted cursors, JSON nested too deep, numbers too long, bytes that are not UTF-8, bodies
too large and names that could shape a header reach every endpoint that reads them; the
answer must be an error the API's handler wrote, never a traceback nor Django's HTML page.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from rest_framework.test import APIClient

from cluster.core import topology as topo
from snapshots.api.parsers import body_limit
from snapshots.models import Run, Topology, Watchpoint
from tests.integration.api.support import DEEP, make_run, make_topology, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(redis_url: str) -> Run:
    return make_run(make_topology("ring3"))


def refused_in_json(response: Any, status: int, words: str) -> None:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert words in response.json()["detail"]


@pytest.mark.parametrize("position", ["abc", "inf", "nan", "1e400", "-1", "1" * 19])
@pytest.mark.parametrize("path", ["/api/snapshots/", "/api/runs/"])
def test_a_crafted_cursor_position_is_a_json_404(staff: APIClient, path: str, position: str) -> None:
    cursor = base64.b64encode(f"p={position}".encode()).decode()
    refused_in_json(staff.get(path, {"cursor": cursor}), 404, "Invalid cursor")


def test_a_cursor_the_api_wrote_still_pages(staff: APIClient) -> None:
    topology = make_topology("ring3")
    for _ in range(3):
        make_run(topology)
    first = staff.get("/api/runs/", {"page_size": 2}).json()
    second = staff.get(first["next"])
    assert second.status_code == 200 and len(second.json()["results"]) == 1


def _bodies(run: Run) -> list[tuple[str, str]]:
    return [
        ("post", "/api/topologies/"),
        ("patch", f"/api/runs/{run.pk}/faults/"),
        ("post", f"/api/runs/{run.pk}/watchpoints/"),
    ]


@pytest.mark.parametrize(
    ("raw", "status", "words"),
    [
        (DEEP.encode(), 400, "nested 50000 levels deep"),
        ('{"name": ' + "7" * 5000 + "}", 400, "a number has 5000 characters"),
        ('{"delay_ms": 1e400}', 400, "too large"),
        (b'{"name": "\xff\xfe"}', 400, "not utf-8 text"),
    ],
    ids=["deep", "huge-int", "huge-float", "not-utf8"],
)
def test_a_hostile_body_is_a_json_400_and_changes_nothing(
    staff: APIClient, run: Run, raw: str | bytes, status: int, words: str
) -> None:
    make_user("operator", "olga")
    before = (Topology.objects.count(), Watchpoint.objects.count(), Run.objects.get(pk=run.pk).faults)
    for method, path in _bodies(run):
        response = getattr(staff, method)(path, raw, content_type="application/json")
        assert response.status_code == status, (path, response.content[:300])
        assert response["Content-Type"] == "application/json"
        assert words in response.json()["detail"].lower() or words in response.json()["detail"]
    assert (Topology.objects.count(), Watchpoint.objects.count(), Run.objects.get(pk=run.pk).faults) == before


def test_a_body_over_the_limit_is_a_json_413(staff: APIClient, run: Run) -> None:
    raw = b'{"name": "' + b"x" * body_limit() + b'"}'
    for method, path in _bodies(run):
        response = getattr(staff, method)(path, raw, content_type="application/json")
        refused_in_json(response, 413, f"larger than {body_limit()} bytes")


def test_a_deep_but_allowed_body_still_works(staff: APIClient, run: Run) -> None:
    response = staff.patch(f"/api/runs/{run.pk}/faults/", {"p1->p2": {"delay_ms": 10}}, format="json")
    assert response.status_code == 200, response.json()


# --- names that could shape a header ------------------------------------------------------


@pytest.mark.parametrize("name", ["a\nb", 'say "hi"', "a;b", "a\u202eb", "back\\slash"])
def test_the_api_refuses_a_name_that_could_shape_a_header(staff: APIClient, name: str) -> None:
    data = {**topo.ring(3, name="x"), "name": name}
    response = staff.post("/api/topologies/", data, format="json")
    refused_in_json(response, 400, "may hold no control or bidi characters")
    assert not Topology.objects.exists()
