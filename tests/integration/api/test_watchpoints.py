"""Watchpoints through the API: one that fires on real workers, and, without workers, how
they are checked, given to the workers and taken back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Run, Snapshot, Watchpoint
from tests.integration.api.support import forget_runs, make_user, token_client
from tests.integration.engine_helpers import SNAPSHOT_WAIT, assert_sound_export, demo_topology, poll


def test_a_watchpoint_added_through_the_api_triggers_a_snapshot_that_names_it(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    try:
        operator = token_client(make_user("operator"))
        run = operator.post("/api/runs/", {"topology": demo_topology("ring-5").pk, "rate": 10}, format="json").json()
        added = operator.post(
            f"/api/runs/{run['id']}/watchpoints/", {"condition": "balance != 100", "process": "p3"}, format="json"
        )
        assert added.status_code == 201, added.json()
        wp = added.json()
        assert (wp["process"], wp["kind"], wp["mode"], wp["enabled"], wp["hits"]) == ("p3", "state", "once", True, 0)

        found = poll(
            lambda: operator.get(f"/api/snapshots/?run={run['id']}&watchpoint={wp['id']}").json()["results"],
            lambda results: bool(results),
            what=f"a snapshot triggered by watchpoint {wp['id']}",
            timeout=SNAPSHOT_WAIT,
            workers=workers,
        )
        (summary,) = found
        assert (summary["watchpoint"], summary["initiator"]) == (wp["id"], "p3")
        snapshot = services.wait_for_snapshot(summary["id"], SNAPSHOT_WAIT)
        export = operator.get(f"/api/snapshots/{snapshot.pk}/").json()
        assert_sound_export(export, Run.objects.get(pk=run["id"]))
        p3 = next(p for p in export["processes"] if p["process"] == "p3")
        assert p3["state"]["balance"] != 100 and str(p3["state"]["balance"]) in export["trigger"]

        after = operator.get(f"/api/runs/{run['id']}/watchpoints/{wp['id']}/").json()
        assert (after["hits"], after["enabled"]) == (1, False)  # once: disabled by its hit
        assert operator.get(f"/api/runs/{run['id']}/watchpoints/").json() == [after]
        assert operator.delete(f"/api/runs/{run['id']}/watchpoints/{wp['id']}/").status_code == 204
        assert Snapshot.objects.get(pk=snapshot.pk).watchpoint_id is None  # the snapshot stays
    finally:
        forget_runs()


# --- without workers ----------------------------------------------------------------------


def test_a_watchpoint_that_does_not_parse_is_a_400_pointing_at_the_column(live_run: Run, operator: APIClient) -> None:
    url = f"/api/runs/{live_run.pk}/watchpoints/"
    response = operator.post(url, {"condition": "balance < 10 and"}, format="json")
    assert response.status_code == 400
    assert "col " in response.json()["detail"] and "balance < 10 and" in response.json()["detail"], response.json()
    refused = operator.post(url, {"condition": "balance ** 2 > 5"}, format="json")
    assert refused.status_code == 400 and "col 9" in refused.json()["detail"], refused.json()
    typo = operator.post(url, {"condition": "balance > 0 or balanse < 10"}, format="json")
    assert typo.status_code == 400, typo.json()
    assert "col 16: unknown name 'balanse'" in typo.json()["detail"] and "balance" in typo.json()["detail"]
    assert not Watchpoint.objects.exists()


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"condition": "balance < 10", "process": "p9"}, "has no process 'p9'"),
        ({"condition": "balance < 10", "mode": "twice"}, 'mode: "twice" is not a valid choice.'),
        ({"condition": "balance < 10", "mode": "every", "cooldown_s": 0}, "cooldown_s must be between 0.1"),
        ({"condition": "balance < 10", "algorithm": "naive"}, 'algorithm: "naive" is not a valid choice.'),
        ({"condition": 10}, "condition: Not a valid string."),
        ({}, "condition: This field is required."),
    ],
)
def test_a_bad_watchpoint_is_refused_naming_the_problem(
    live_run: Run, operator: APIClient, given: dict[str, Any], words: str
) -> None:
    response = operator.post(f"/api/runs/{live_run.pk}/watchpoints/", given, format="json")
    assert response.status_code == 400
    assert words in response.json()["detail"], response.json()


def test_a_watchpoint_is_given_to_the_workers_and_taken_back(live_run: Run, operator: APIClient) -> None:
    added = operator.post(
        f"/api/runs/{live_run.pk}/watchpoints/",
        {"condition": "src == 'p1' and msg.amount > 5", "mode": "every", "cooldown_s": 2, "algorithm": "lai-yang"},
        format="json",
    ).json()
    assert (added["kind"], added["process"], added["cooldown_s"]) == ("event", None, 2.0)
    meta = services.store().run_meta(live_run.pk)
    assert [(w["id"], w["condition"], w["algorithm"]) for w in meta["watchpoints"]] == [
        (added["id"], "src == 'p1' and msg.amount > 5", "lai-yang")
    ]
    assert operator.delete(f"/api/runs/{live_run.pk}/watchpoints/{added['id']}/").status_code == 204
    assert services.store().run_meta(live_run.pk)["watchpoints"] == []
    gone = operator.delete(f"/api/runs/{live_run.pk}/watchpoints/{added['id']}/")
    assert gone.status_code == 404 and gone.json()["detail"] == f"run {live_run.pk} has no watchpoint {added['id']}"
