"""Comparing two snapshots through the API: what changed per process and per channel,
and what cannot be compared.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from snapshots import services
from tests.integration.api.support import make_finished_snapshot, make_run, make_topology


def test_compare_says_what_changed_per_process_and_per_channel(viewer: APIClient) -> None:
    run = make_run(make_topology())
    a = make_finished_snapshot(run, in_flight=1)
    b = make_finished_snapshot(run, in_flight=3)
    response = viewer.get(f"/api/snapshots/compare/?a={a.pk}&b={b.pk}")
    assert response.status_code == 200, response.json()
    result = response.json()
    assert (result["a"]["id"], result["b"]["id"], result["first"]) == (a.pk, b.pk, "a")
    p1 = next(p for p in result["processes"] if p["process"] == "p1")
    assert p1["changes"] == [{"key": "balance", "a": 90, "b": 70, "missing": None}]
    assert p1["events"] == {"a": 1, "b": 3}
    channel = next(c for c in result["channels"] if c["channel"] == "p1→p2")
    assert [m["seq"] for m in channel["both"]] == [1] and [m["seq"] for m in channel["only_b"]] == [2, 3]
    assert result["totals"]["processes_changed"] == 1 and result["totals"]["channels_changed"] == 1


@pytest.mark.parametrize(
    ("query", "status", "words"),
    [
        ("a=A", 400, "b: This field is required."),
        ("a=A&b=x", 400, "b: A valid integer is required."),
        ("a=A&b=99999", 404, "no snapshot with id 99999"),
        ("a=A&b=OTHER", 400, "are of different runs"),
        ("a=A&b=RUNNING", 400, "is running; only complete snapshots can be compared"),
    ],
)
def test_compare_refuses_what_cannot_be_compared(viewer: APIClient, query: str, status: int, words: str) -> None:
    run = make_run(make_topology())
    ids = {
        "A": make_finished_snapshot(run).pk,
        "OTHER": make_finished_snapshot(make_run(run.topology)).pk,
        "RUNNING": services.new_snapshot(run, "p1", "chandy-lamport").pk,
    }
    for name, pk in ids.items():
        query = query.replace(f"={name}", f"={pk}")
    response = viewer.get(f"/api/snapshots/compare/?{query}")
    assert response.status_code == status and words in response.json()["detail"], response.json()
