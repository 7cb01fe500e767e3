"""The REST API of issue 5: restore, watchpoints, channel faults, the second algorithm,
comparison, and what exports and run details now say.

The first tests drive real workers through the API as a script would; the rest need no
worker (a heartbeat lets runs start), only the test client, the database and Redis.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from cluster.devserver.children import Child
from snapshots import services
from snapshots.api import exports
from snapshots.models import Restore, Run, Snapshot, Watchpoint
from tests.integration.engine_helpers import (
    SNAPSHOT_WAIT,
    assert_sound_export,
    await_traffic,
    demo_topology,
    poll,
)
from tests.integration.test_api_support import (
    forget_runs,
    live_cluster,
    make_finished_snapshot,
    make_run,
    make_topology,
    make_user,
    token_client,
)


def body(response: Any) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


# --- on real workers ----------------------------------------------------------------------


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
        assert_sound_export(snapshot.to_dict(), run)
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
        export = services.wait_for_snapshot(later.json()["id"], SNAPSHOT_WAIT).to_dict()
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


@pytest.fixture
def operator(db: None) -> APIClient:
    return token_client(make_user("operator"))


@pytest.fixture
def live_run(db: None, redis_url: str) -> Iterator[Run]:
    """A run started for real (its processes and meta in Redis), with no worker to run it."""
    with live_cluster():
        yield services.start_run(make_topology("ring3"), "bank", 1.0, seed=1)


def test_faults_patched_through_the_api_are_in_force_and_in_the_run_status(live_run: Run, operator: APIClient) -> None:
    url = f"/api/runs/{live_run.pk}/faults/"
    assert operator.get(url).json() == {}
    changed = operator.patch(
        url, {"p1→p2": {"delay_ms": 100, "reorder": True}, "p2 -> p3": {"loss": 0.25}}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["p1→p2"]["delay_ms"] == 100 and changed.json()["p1→p2"]["reorder"] is True
    assert changed.json()["p2→p3"]["loss"] == 0.25  # the ASCII arrow is read too

    detail = operator.get(f"/api/runs/{live_run.pk}/").json()
    assert detail["faults"] == detail["live"]["faults"] == changed.json()
    assert services.store().run_meta(live_run.pk)["faults"] == changed.json()  # the workers' copy

    plain = operator.patch(url, {"p1→p2": {}}, format="json")
    assert plain.status_code == 200 and "p1→p2" not in plain.json() and "p2→p3" in plain.json()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"p1→p2": {"delay_ms": -5}}, "delay_ms must be a whole number of milliseconds from 0 to 10000"),
        ({"p1→p2": {"delay_ms": 1.5}}, "delay_ms must be a whole number"),
        ({"p1→p2": {"loss": 0.95}}, "loss must be a fraction from 0 to 0.9"),
        ({"p1→p2": {"reorder": "yes"}}, "reorder must be true or false"),
        ({"p1→p2": {"jitter": 3}}, "unknown fault 'jitter'"),
        ({"p1→p2": 5}, "faults must be an object"),
        ({"p1→p9": {"loss": 0.1}}, "has no channel 'p1→p9'"),
        ({}, "give the faults by channel"),
        ([], "give the faults by channel"),
        ({"p1→p2": {}, "p1->p2": {"loss": 0.1}}, "channel p1→p2 is given twice"),
    ],
)
def test_bad_faults_are_refused_naming_the_channel_and_the_setting(
    live_run: Run, operator: APIClient, change: Any, words: str
) -> None:
    response = operator.patch(f"/api/runs/{live_run.pk}/faults/", change, format="json")
    assert response.status_code == 400
    assert words in response.json()["detail"], response.json()
    live_run.refresh_from_db()
    assert live_run.faults == {}


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


def test_a_snapshot_is_taken_with_the_algorithm_asked_for(live_run: Run, operator: APIClient) -> None:
    url = f"/api/runs/{live_run.pk}/snapshots/"
    taken = operator.post(url, {"algorithm": "lai-yang", "initiator": "p3"}, format="json")
    assert taken.status_code == 201 and taken.json()["algorithm"] == "lai-yang", taken.json()
    assert operator.post(url, {}, format="json").json()["algorithm"] == "chandy-lamport"
    refused = operator.post(url, {"algorithm": "naive"}, format="json")
    assert refused.status_code == 400 and 'algorithm: "naive" is not a valid choice.' in refused.json()["detail"]
    listed = operator.get(f"/api/snapshots/?run={live_run.pk}&algorithm=lai-yang").json()["results"]
    assert [s["id"] for s in listed] == [taken.json()["id"]]


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


# --- comparison, exports and run details (records only) -----------------------------------


@pytest.fixture
def viewer(db: None) -> APIClient:
    return token_client(make_user("viewer"))


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


def _with_uses(snapshot: Snapshot, watchpoint: Watchpoint | None = None) -> Snapshot:
    """The snapshot as a watchpoint on a restored run would have left it, with its properties."""
    snapshot.algorithm, snapshot.epoch = "lai-yang", 2
    snapshot.watchpoint, snapshot.trigger = watchpoint, "balance = 90" if watchpoint else ""
    snapshot.properties = {
        "conservation": {"holds": True, "detail": "300 of 300"},
        "termination": {"holds": None, "detail": "the bank workload never ends"},
        "deadlock": {"holds": False, "detail": "nobody waits", "cycle": []},
    }
    snapshot.save()
    return snapshot


def test_every_export_says_how_the_snapshot_was_taken_and_what_held(viewer: APIClient) -> None:
    run = make_run(make_topology())
    wp = Watchpoint.objects.create(run=run, process="p1", condition="balance < 95", kind="state")
    snapshot = _with_uses(make_finished_snapshot(run, in_flight=1), wp)

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


def test_a_run_detail_has_its_faults_epoch_restores_and_when_each_property_first_held(viewer: APIClient) -> None:
    run = make_run(make_topology())
    Run.objects.filter(pk=run.pk).update(epoch=1, faults={"p1→p2": {"delay_ms": 50, "reorder": False, "loss": 0.0}})
    first = _with_uses(make_finished_snapshot(run))
    _with_uses(make_finished_snapshot(run))
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
