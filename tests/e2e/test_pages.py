"""The pages and the dashboard's JSON, through Django's test client: who sees what, the
start-run form's checks, and the shapes the dashboard reloads."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from snapshots import services
from snapshots.models import ProcessRecord, Run, Snapshot
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
    record = {"process": "p1", "state": {"balance": 300}, "sent": {}, "received": {}, "clock": {}}
    ProcessRecord.objects.create(snapshot=snapshot, recorded_at=run.created_at, **record)
    client = client_for(make_user("vera", "viewer"))
    page = client.get(f"/snapshots/{snapshot.pk}/")
    assert "consistent · 300 of 300 conserved · 0 problems" in page.content.decode()
    export = client.get(f"/snapshots/{snapshot.pk}/export.json").json()
    assert export["verdict_text"] == "consistent · 300 of 300 conserved · 0 problems"
    assert export["processes"] == [record]
