"""Restoring a run through the API: on real workers, and the snapshots it refuses.

The first test drives real workers through the API as a script would; the other needs no
worker (a heartbeat lets runs start), only the test client, the database and Redis.
"""

from __future__ import annotations

from collections.abc import Callable

from rest_framework.test import APIClient

from cluster.devserver.children import Child
from snapshots import services
from snapshots.models import Run
from snapshots.presenter import snapshot_export
from tests.integration.api.support import forget_runs, make_finished_snapshot, make_run, make_user, token_client
from tests.integration.engine_helpers import SNAPSHOT_WAIT, assert_sound_export, await_traffic, demo_topology


def test_an_operator_restores_a_run_through_the_api_and_a_later_snapshot_is_consistent(
    cluster_workers: Callable[[int], list[Child]],
) -> None:
    workers = cluster_workers(2)
    try:
        operator = token_client(make_user("operator"))
        started = operator.post("/api/runs/", {"topology": demo_topology("complete-4").pk, "rate": 10}, format="json")
        assert started.status_code == 201, started.json()
        run = Run.objects.get(pk=started.json()["id"])
        await_traffic(run, 30, workers)

        taken = operator.post(f"/api/runs/{run.pk}/snapshots/", {"initiator": "p2"}, format="json")
        assert taken.status_code == 201, taken.json()
        snapshot = services.wait_for_snapshot(taken.json()["id"], SNAPSHOT_WAIT)
        assert_sound_export(snapshot_export(snapshot), run)
        in_channels = sum(len(c.messages) for c in snapshot.channel_records.all())

        restored = operator.post(f"/api/runs/{run.pk}/restore/", {"snapshot": snapshot.pk}, format="json")
        assert restored.status_code == 201, restored.json()
        answer = restored.json()
        assert (answer["run"], answer["snapshot"], answer["epoch"]) == (run.pk, snapshot.pk, 1)
        assert answer["replayed_messages"] == in_channels

        detail = operator.get(f"/api/runs/{run.pk}/").json()
        assert detail["epoch"] == detail["live"]["epoch"] == 1
        assert [r["id"] for r in detail["restores"]] == [answer["id"]]
        assert operator.get(f"/api/runs/{run.pk}/restores/").json() == detail["restores"]

        # The restored run goes on; a Lai–Yang snapshot of it, taken through the API, is sound.
        await_traffic(run, services.run_status(run)["messages_applied"] + 30, workers)
        later = operator.post(f"/api/runs/{run.pk}/snapshots/", {"algorithm": "lai-yang"}, format="json")
        assert later.status_code == 201 and later.json()["algorithm"] == "lai-yang", later.json()
        export = snapshot_export(services.wait_for_snapshot(later.json()["id"], SNAPSHOT_WAIT))
        assert_sound_export(export, run)
        assert (export["algorithm"], export["epoch"]) == ("lai-yang", 1)
        shown = operator.get(f"/api/snapshots/{export['id']}/").json()
        assert (shown["algorithm"], shown["epoch"], shown["properties"]["conservation"]["holds"]) == (
            "lai-yang",
            1,
            True,
        )
    finally:
        forget_runs()


def test_only_a_sound_snapshot_of_the_run_can_be_restored(live_run: Run, operator: APIClient) -> None:
    url = f"/api/runs/{live_run.pk}/restore/"
    running = services.start_snapshot(live_run, "p1")
    other = make_finished_snapshot(make_run(live_run.topology))
    for given, status, words in [
        ({"snapshot": running.pk}, 400, "only a complete snapshot can be restored"),
        ({"snapshot": other.pk}, 400, f"is of run {other.run_id}, not of run {live_run.pk}"),
        ({"snapshot": 99999}, 400, "snapshot: no snapshot with id 99999"),
        ({"snapshot": "1"}, 400, "snapshot: A valid integer is required."),
        ({}, 400, "snapshot: This field is required."),
    ]:
        response = operator.post(url, given, format="json")
        assert response.status_code == status and words in response.json()["detail"], (given, response.json())
    live_run.refresh_from_db()
    assert live_run.epoch == 0 and not live_run.restores.exists()
