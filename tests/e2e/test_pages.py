"""The pages and the dashboard's JSON, through Django's test client: who sees what, the
start-run form's checks, and the shapes the dashboard reloads."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from snapshots import services
from snapshots.models import ChannelRecord, ProcessRecord, Restore, Run, Snapshot, Watchpoint
from tests.e2e.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)


def client_for(user: Any = None) -> Client:
    client = Client()
    if user is not None:
        assert client.login(username=user.username, password=PASSWORD)
    return client


def test_strangers_are_sent_to_log_in_and_see_no_data(ring3: Any) -> None:
    run = services.start_run(ring3, rate=1.0)
    client = client_for()
    for url in ("/", f"/runs/{run.pk}/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.get(f"/runs/{run.pk}/state.json")
    assert response.status_code == 403 and response.json() == {"error": "Log in to watch runs."}


def test_users_without_the_viewer_role_are_told_so(ring3: Any, make_user: Callable[..., Any]) -> None:
    response = client_for(make_user("nora")).get("/")
    assert response.status_code == 403
    assert b"ask an administrator for the viewer role" in response.content


def test_public_read_opens_the_pages_but_not_the_controls(ring3: Any, settings: Any) -> None:
    settings.CUTLINE = {**settings.CUTLINE, "PUBLIC_READ": True}
    run = services.start_run(ring3, rate=1.0)
    client = client_for()
    assert client.get("/").status_code == 200
    page = client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200 and b'id="controls"' not in page.content
    assert client.get(f"/runs/{run.pk}/state.json").json()["permissions"] == {"control": False}
    response = client.post("/runs/start/", {"topology": "ring3"})
    assert response.status_code == 302 and Run.objects.count() == 1


def test_a_viewer_cannot_start_a_run_and_is_told_why(ring3: Any, make_user: Callable[..., Any]) -> None:
    client = client_for(make_user("vera", "viewer"))
    assert b"Start run" not in client.get("/").content
    response = client.post("/runs/start/", {"topology": "ring3", "rate": "2"}, follow=True)
    assert b"You are not allowed to start runs" in response.content
    assert Run.objects.count() == 0


def test_an_operator_starts_a_run_and_lands_on_its_dashboard(ring3: Any, make_user: Callable[..., Any]) -> None:
    client = client_for(make_user("olga", "operator"))
    response = client.post("/runs/start/", {"topology": "ring3", "workload": "bank", "rate": "3"})
    run = Run.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.pk}/"
    assert run.rate == 3.0 and run.created_by is not None
    page = client.get(f"/runs/{run.pk}/")
    assert b'id="controls"' in page.content and b'"socket": "/ws/runs/' in page.content


@pytest.mark.parametrize(
    ("form", "words"),
    [
        ({"topology": "nowhere"}, b"no topology named"),
        ({"topology": "ring3", "rate": "fast"}, b"is not a number"),
        ({"topology": "ring3", "rate": "-2"}, b"rate must be above 0"),
        ({"topology": "ring3", "workload": "juggling"}, b"unknown workload"),
    ],
)
def test_a_bad_start_run_form_is_refused_with_the_reason(
    ring3: Any, make_user: Callable[..., Any], form: dict[str, str], words: bytes
) -> None:
    client = client_for(make_user("olga", "operator"))
    response = client.post("/runs/start/", form, follow=True)
    assert words in response.content
    assert Run.objects.count() == 0


def test_the_state_json_is_what_a_socket_starts_with(ring3: Any, make_user: Callable[..., Any]) -> None:
    run = services.start_run(ring3, rate=1.0)
    state = client_for(make_user("vera", "viewer")).get(f"/runs/{run.pk}/state.json").json()
    assert state["type"] == "state" and state["run"]["id"] == run.pk and state["live_state"] is True
    assert [p["name"] for p in state["processes"]] == ["p1", "p2", "p3"]
    assert state["history"]["counts"] == {"running": 0, "complete": 0, "failed": 0}


def test_a_run_the_store_has_lost_still_shows_its_topology(ring3: Any, make_user: Callable[..., Any]) -> None:
    run = services.start_run(ring3, rate=1.0)
    services.store().delete_run(run.pk, run.process_names)
    state = client_for(make_user("vera", "viewer")).get(f"/runs/{run.pk}/state.json").json()
    assert state["live_state"] is False
    assert [p["name"] for p in state["processes"]] == ["p1", "p2", "p3"]


def test_the_event_log_around_a_snapshot(ring3: Any, make_user: Callable[..., Any]) -> None:
    run = services.start_run(ring3, rate=1.0)
    events = [
        {"kind": "send", "process": "p1", "peer": "p2", "seq": 1, "clock": {"p1": 1}, "t": 10.0},
        {"kind": "record", "process": "p1", "snapshot": 5, "clock": {"p1": 1}, "t": 20.0},
        {"kind": "record", "process": "p2", "snapshot": 5, "clock": {"p2": 0}, "t": 20.1},
        {"kind": "receive", "process": "p2", "peer": "p1", "seq": 1, "clock": {"p1": 1, "p2": 1}, "t": 20.2},
    ]
    key = f"cutline:run:{run.pk}:events"
    services.store().redis.lpush(key, *(json.dumps(e) for e in events))
    client = client_for(make_user("vera", "viewer"))
    around = client.get(f"/runs/{run.pk}/events.json?snapshot=5").json()
    assert around["found"] is True and [e["t"] for e in around["events"]] == [20.0, 20.1, 20.2]
    newest = client.get(f"/runs/{run.pk}/events.json?limit=2").json()
    assert [e["t"] for e in newest["events"]] == [20.1, 20.2]
    missing = client.get(f"/runs/{run.pk}/events.json?snapshot=6").json()
    assert missing["found"] is False
    assert client.get(f"/runs/{run.pk}/events.json?limit=many").status_code == 400


def test_the_snapshot_page_shows_its_verdict_in_words(ring3: Any, make_user: Callable[..., Any]) -> None:
    run = services.start_run(ring3, rate=1.0)
    snapshot = Snapshot.objects.create(
        run=run,
        initiator="p1",
        status=Snapshot.Status.COMPLETE,
        processes_total=3,
        channels_total=6,
        processes_reported=3,
        channels_reported=6,
        verdict={"consistent": True, "conserved": True, "expected_total": 300, "recorded_total": 300, "problems": []},
    )
    record = {"process": "p1", "state": {"balance": 300}, "sent": {}, "received": {}, "received_above": {}, "clock": {}}
    ProcessRecord.objects.create(snapshot=snapshot, recorded_at=run.created_at, **record)
    client = client_for(make_user("vera", "viewer"))
    page = client.get(f"/snapshots/{snapshot.pk}/")
    assert "consistent · 300 of 300 conserved · 0 problems" in page.content.decode()
    export = client.get(f"/snapshots/{snapshot.pk}/export.json").json()
    assert export["verdict_text"] == "consistent · 300 of 300 conserved · 0 problems"
    assert export["processes"] == [record]


# --- restore, stable properties, watchpoints, compare ------------------------------------------

SOUND = {"consistent": True, "conserved": True, "expected_total": 300, "recorded_total": 300, "problems": []}
PROPERTIES = {
    "conservation": {"holds": True, "detail": "300 of 300 balance recorded"},
    "termination": {"holds": None, "detail": "the bank workload never terminates"},
    "deadlock": {"holds": None, "detail": "the bank workload makes no requests", "cycle": []},
}


def recorded(run: Run, balances: dict[str, int], channels: dict[str, list[tuple[int, int]]], **fields: Any) -> Snapshot:
    """A complete snapshot of ``run`` with these recorded balances and channel messages
    (``{"p1→p2": [(seq, amount), …]}``), as the recorder would have stored it."""
    fields = {"verdict": SOUND, "properties": PROPERTIES, **fields}
    snapshot = Snapshot.objects.create(
        run=run,
        initiator="p1",
        status=Snapshot.Status.COMPLETE,
        processes_total=3,
        channels_total=6,
        processes_reported=3,
        channels_reported=6,
        **fields,
    )
    for name, balance in balances.items():
        ProcessRecord.objects.create(
            snapshot=snapshot,
            process=name,
            state={"balance": balance},
            sent={},
            received={},
            clock={name: balance},
            recorded_at=run.created_at,
        )
    for cid, messages in channels.items():
        src, dst = cid.split("→")
        ChannelRecord.objects.create(
            snapshot=snapshot,
            src=src,
            dst=dst,
            messages=[{"seq": seq, "payload": {"amount": amount}} for seq, amount in messages],
            markers=[],
            closed_at=run.created_at,
        )
    return snapshot


def test_the_snapshot_page_shows_stable_properties_algorithm_and_trigger(
    ring3: Any, make_user: Callable[..., Any]
) -> None:
    run = services.start_run(ring3, rate=1.0)
    watchpoint = Watchpoint.objects.create(run=run, process="p2", condition="balance < 10", kind="state")
    deadlocked = {
        **PROPERTIES,
        "deadlock": {"holds": True, "detail": "p1 waits for p2, p2 for p1", "cycle": ["p1", "p2"]},
    }
    snapshot = recorded(
        run,
        {"p1": 100, "p2": 5, "p3": 195},
        {},
        algorithm="lai-yang",
        watchpoint=watchpoint,
        trigger="balance = 5",
        properties=deadlocked,
    )
    page = client_for(make_user("vera", "viewer")).get(f"/snapshots/{snapshot.pk}/").content.decode()
    assert '<dd id="algorithm">Lai–Yang</dd>' in page
    assert f"watchpoint #{watchpoint.pk} <code>balance &lt; 10</code> at p2" in page and "balance = 5" in page
    assert 'data-property="deadlock"' in page and "p1 → p2 → p1" in page
    # The first complete snapshot in which each property held says so.
    assert page.count("first held here") == 2  # conservation and deadlock
    # A viewer is not offered the restore.
    assert 'id="restore"' not in page


def test_only_operators_are_offered_a_restore_and_only_of_a_sound_snapshot(
    ring3: Any, make_user: Callable[..., Any]
) -> None:
    run = services.start_run(ring3, rate=1.0)
    sound = recorded(run, {"p1": 100, "p2": 100, "p3": 100}, {})
    unsound = recorded(
        run,
        {"p1": 100, "p2": 100, "p3": 90},
        {},
        verdict={**SOUND, "consistent": False, "recorded_total": 290, "problems": ["p3 recorded receiving seq 7 …"]},
    )
    olga = client_for(make_user("olga", "operator"))
    assert 'id="restore"' in olga.get(f"/snapshots/{sound.pk}/").content.decode()
    page = olga.get(f"/snapshots/{unsound.pk}/").content.decode()
    assert 'id="restore"' not in page and "p3 recorded receiving seq 7" in page
    # Posted anyway, the restore of an unsound snapshot is refused with the services' reason.
    response = olga.post(f"/snapshots/{unsound.pk}/restore/", follow=True)
    assert f"Could not restore the run: snapshot {unsound.pk} is not a consistent cut" in response.content.decode()
    assert Restore.objects.count() == 0
    vera = client_for(make_user("vera", "viewer"))
    response = vera.post(f"/snapshots/{sound.pk}/restore/", follow=True)
    assert "You are not allowed to restore runs" in response.content.decode()


def test_the_restore_form_restores_and_lands_on_the_dashboard(
    ring3: Any, make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The form's wiring; the restore itself, on real workers, is in the browser test."""
    from snapshots import recovery

    run = services.start_run(ring3, rate=1.0)
    snapshot = recorded(run, {"p1": 100, "p2": 100, "p3": 100}, {"p1→p2": [(3, 5), (4, 6)]})
    calls = []

    def restore_run(run_: Run, snapshot_: Snapshot, user: Any = None) -> Restore:
        calls.append((run_.pk, snapshot_.pk, user.username))
        return Restore.objects.create(run=run_, snapshot=snapshot_, epoch=1, replayed_messages=2, dropped_frames=0)

    monkeypatch.setattr(recovery, "restore_run", restore_run)
    response = client_for(make_user("olga", "operator")).post(f"/snapshots/{snapshot.pk}/restore/", follow=True)
    assert calls == [(run.pk, snapshot.pk, "olga")]
    assert response.redirect_chain[-1][0] == f"/runs/{run.pk}/"
    words = (
        f"Run {run.pk} restored from snapshot #{snapshot.pk} (epoch 1): 2 recorded messages re-entered their channels."
    )
    assert words in response.content.decode()


def test_the_state_json_carries_restores_watchpoints_properties_and_channel_contents(
    ring3: Any, make_user: Callable[..., Any]
) -> None:
    from cluster.engine.store import channel_log_key, process_key

    run = services.start_run(ring3, rate=1.0)
    first = recorded(run, {"p1": 100, "p2": 100, "p3": 100}, {})
    restore = Restore.objects.create(run=run, snapshot=first, epoch=1, replayed_messages=1, dropped_frames=4)
    Watchpoint.objects.create(run=run, condition="balance < 10", kind="state", hits=2)
    # p2 has applied seq 1 from p1 (the log forgets applied frames only lazily); seq 2 is
    # in the channel, and so is a marker, which is not a message.
    store = services.store()
    p2 = store.load_process(run.pk, "p2")
    store.redis.set(process_key(run.pk, "p2"), json.dumps({**p2, "applied": {**p2["applied"], "p1": 1}}))
    frames = [
        {"kind": "message", "src": "p1", "dst": "p2", "seq": 1, "payload": {"amount": 3}, "epoch": 1},
        {"kind": "message", "src": "p1", "dst": "p2", "seq": 2, "payload": {"amount": 7}, "epoch": 1},
        {"kind": "marker", "src": "p1", "dst": "p2", "seq": 3, "snapshot": 9, "epoch": 1},
    ]
    store.redis.zadd(
        channel_log_key(run.pk, "p1", "p2"), {json.dumps({"sent_at": 1.0, "frame": f}): f["seq"] for f in frames}
    )
    state = client_for(make_user("vera", "viewer")).get(f"/runs/{run.pk}/state.json").json()
    assert state["restores"] == [
        {"id": restore.pk, "run": run.pk, "snapshot": first.pk, "epoch": 1, "at": state["restores"][0]["at"],
         "replayed_messages": 1, "dropped_frames": 4}
    ]  # fmt: skip
    assert [(w["condition"], w["hits"], w["process"]) for w in state["watchpoints"]] == [("balance < 10", 2, None)]
    assert state["first_holding"] == {"conservation": first.pk}
    assert state["in_flight"] == {"p1→p2": [[2, {"amount": 7}]]}
    assert state["run"]["known_names"][:1] == ["balance"] and "msg.amount" in state["run"]["known_names"]
    assert state["run"]["epoch"] == 0 and state["run"]["faults"] == {}
    assert state["snapshots"][0]["properties"] == PROPERTIES
    assert state["fault_counts"] == {"retransmissions": {}, "lost": {}}


def test_compare_shows_state_and_channel_differences_side_by_side(ring3: Any, make_user: Callable[..., Any]) -> None:
    run = services.start_run(ring3, rate=1.0)
    a = recorded(run, {"p1": 100, "p2": 90, "p3": 100}, {"p1→p2": [(3, 5), (4, 5)]})
    b = recorded(run, {"p1": 100, "p2": 80, "p3": 110}, {"p1→p2": [(4, 5), (6, 9)], "p3→p1": [(2, 1)]})
    client = client_for(make_user("vera", "viewer"))
    picker = client.get(f"/runs/{run.pk}/compare/")
    assert picker.status_code == 200 and f'<option value="{a.pk}"' in picker.content.decode()
    page = client.get(f"/runs/{run.pk}/compare/?a={a.pk}&b={b.pk}").content.decode()
    assert "2 changed, 1 the same" in page
    assert '<tr data-process="p2" class="changed">' in page and '<tr data-process="p1" class="same">' in page
    row = page[page.index('<tr data-channel="p1→p2"') :].split("</tr>")[0]
    only_a, both, only_b = (cell.split(">", 1)[1].split("</td")[0] for cell in row.split("<td")[2:5])
    assert (only_a, both, only_b) == ("3: amount 5", "4: amount 5", "6: amount 9")
    assert "2 in a, 3 in b (1 only in a, 2 only in b, 1 in both)" in page.replace("\n", " ")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("a={a}&b=x", "snapshot b must be a snapshot id, not &#x27;x&#x27;"),
        ("a={a}&b=999999", "there is no snapshot 999999"),
        ("a={a}&b={other}", "is of run"),
        ("a={a}&b={running}", "only complete snapshots can be compared"),
    ],
)
def test_compare_refuses_what_cannot_be_compared(
    ring3: Any, make_user: Callable[..., Any], query: str, words: str
) -> None:
    run = services.start_run(ring3, rate=1.0)
    a = recorded(run, {"p1": 100, "p2": 100, "p3": 100}, {})
    other = recorded(services.start_run(ring3, rate=1.0), {"p1": 100, "p2": 100, "p3": 100}, {})
    running = Snapshot.objects.create(run=run, initiator="p1", processes_total=3, channels_total=6)
    url = f"/runs/{run.pk}/compare/?" + query.format(a=a.pk, other=other.pk, running=running.pk)
    response = client_for(make_user("vera", "viewer")).get(url)
    assert response.status_code == 400
    assert words in response.content.decode()


def test_a_workload_that_conserves_nothing_shows_its_own_value_and_no_total(
    ring3: Any, make_user: Callable[..., Any]
) -> None:
    run = services.start_run(ring3, workload="diffusion", rate=1.0)
    state = client_for(make_user("vera", "viewer")).get(f"/runs/{run.pk}/state.json").json()
    assert (state["run"]["unit"], state["run"]["value_key"], state["run"]["expected_total"]) == (None, "jobs", None)
    verdict = {"consistent": True, "conserved": None, "expected_total": None, "recorded_total": None, "problems": []}
    snapshot = recorded(run, {}, {}, verdict=verdict)
    page = client_for(make_user("olga", "operator")).get(f"/snapshots/{snapshot.pk}/").content.decode()
    assert 'verdict-good">consistent · nothing conserved to check · 0 problems' in page
    assert 'id="restore"' in page  # sound: nothing to conserve is not a failure to conserve
