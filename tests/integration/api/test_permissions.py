"""Who may do what: every action of the API against every role, and how they sign in.

anonymous → 401 (with ``WWW-Authenticate: Token``) unless public read-only viewing is on;
signed in without a role → 403; viewer reads; operator also controls runs; staff also
manages topologies. Session writes need the CSRF token; token writes do not. Restores,
watchpoints and channel faults steer a run: operators change them, viewers read them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import override_settings
from rest_framework.test import APIClient

from cluster.core import topology as topo
from snapshots import services
from snapshots import watchpoints as watch
from snapshots.models import Run, Topology
from tests.integration.api.support import (
    live_cluster,
    make_finished_snapshot,
    make_topology,
    make_user,
    token_client,
)

pytestmark = pytest.mark.django_db


@dataclass
class World:
    topology: Topology
    spare: Topology  # free to change or delete: no runs
    run: Run
    snapshot_id: int
    later_id: int  # a second snapshot of the run, to compare with the first
    unsound_id: int  # a snapshot that cannot be restored: refused after the permission check
    watchpoint_id: int


@pytest.fixture
def world(redis_url: str) -> Iterator[World]:
    with live_cluster():
        topology = make_topology("ring3")
        run = services.start_run(topology, "bank", 1.0, seed=1)  # in Redis too: faults and watchpoints reach it
        unsound = services.new_snapshot(run, "p1", "chandy-lamport")
        yield World(
            topology,
            make_topology("spare"),
            run,
            make_finished_snapshot(run).pk,
            make_finished_snapshot(run, in_flight=2).pk,
            unsound.pk,
            watch.add_watchpoint(run, "balance < 10").pk,
        )


@dataclass(frozen=True)
class Action:
    name: str
    method: str
    url: str
    body: Any = None
    ok: int = 200


READS = [
    Action("list topologies", "get", "/api/topologies/"),
    Action("read a topology", "get", "/api/topologies/{spare}/"),
    Action("list runs", "get", "/api/runs/"),
    Action("read a run", "get", "/api/runs/{run}/"),
    Action("list a run's snapshots", "get", "/api/runs/{run}/snapshots/"),
    Action("read a run's events", "get", "/api/runs/{run}/events/"),
    Action("list snapshots", "get", "/api/snapshots/"),
    Action("read a snapshot", "get", "/api/snapshots/{snapshot}/"),
    Action("export a snapshot as CSV", "get", "/api/snapshots/{snapshot}/?format=csv"),
    Action("stream snapshots as NDJSON", "get", "/api/snapshots/?format=ndjson"),
    Action("list a run's restores", "get", "/api/runs/{run}/restores/"),
    Action("list a run's watchpoints", "get", "/api/runs/{run}/watchpoints/"),
    Action("read a watchpoint", "get", "/api/runs/{run}/watchpoints/{watchpoint}/"),
    Action("read a run's faults", "get", "/api/runs/{run}/faults/"),
    Action("compare two snapshots", "get", "/api/snapshots/compare/?a={snapshot}&b={later}"),
]
CONTROLS = [
    Action("start a run", "post", "/api/runs/", {"topology": "{topology}"}, 201),
    Action("pause a run", "post", "/api/runs/{run}/pause/"),
    Action("resume a run", "post", "/api/runs/{run}/resume/"),
    Action("stop a run", "post", "/api/runs/{run}/stop/"),
    Action("take a snapshot", "post", "/api/runs/{run}/snapshots/", {"initiator": "p2"}, 201),
    Action("take a Lai–Yang snapshot", "post", "/api/runs/{run}/snapshots/", {"algorithm": "lai-yang"}, 201),
    # Allowed, then refused for the snapshot it names (a real restore needs live workers).
    Action("restore a run", "post", "/api/runs/{run}/restore/", {"snapshot": "{unsound}"}, 400),
    Action("add a watchpoint", "post", "/api/runs/{run}/watchpoints/", {"condition": "balance > 500"}, 201),
    Action("remove a watchpoint", "delete", "/api/runs/{run}/watchpoints/{watchpoint}/", None, 204),
    Action("change a run's faults", "patch", "/api/runs/{run}/faults/", {"p1→p2": {"delay_ms": 20}}),
]
MANAGES = [
    Action("create a topology", "post", "/api/topologies/", topo.ring(3, name="new"), 201),
    Action("replace a topology", "put", "/api/topologies/{spare}/", topo.ring(4, name="spare"), 200),
    Action("change a topology", "patch", "/api/topologies/{spare}/", {"description": "x"}, 200),
    Action("delete a topology", "delete", "/api/topologies/{spare}/", None, 204),
]
ALLOWED = {
    "viewer": READS,
    "operator": READS + CONTROLS,
    "staff": READS + CONTROLS + MANAGES,
}


def call(client: APIClient, action: Action, world: World) -> Any:
    ids = {
        "topology": world.topology.pk,
        "spare": world.spare.pk,
        "run": world.run.pk,
        "snapshot": world.snapshot_id,
        "later": world.later_id,
        "unsound": world.unsound_id,
        "watchpoint": world.watchpoint_id,
    }
    url = action.url.format(**ids)
    body = action.body
    if isinstance(body, dict):
        body = {key: ids[value[1:-1]] if value in ("{topology}", "{unsound}") else value for key, value in body.items()}
    return getattr(client, action.method)(url, body, format="json")


@pytest.mark.parametrize("action", READS + CONTROLS + MANAGES, ids=lambda a: a.name)
@pytest.mark.parametrize("role", ["viewer", "operator", "staff"])
def test_each_role_may_do_exactly_its_actions(world: World, role: str, action: Action) -> None:
    response = call(token_client(make_user(role)), action, world)
    if action in ALLOWED[role]:
        assert response.status_code == action.ok, getattr(response, "data", response)
    else:
        assert response.status_code == 403
        assert "role" in response.json()["detail"]


@pytest.mark.parametrize("action", READS + CONTROLS + MANAGES, ids=lambda a: a.name)
def test_anonymous_is_asked_to_sign_in(world: World, action: Action) -> None:
    response = call(APIClient(), action, world)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize("action", READS + CONTROLS + MANAGES, ids=lambda a: a.name)
def test_a_user_without_a_role_is_refused(world: World, action: Action) -> None:
    response = call(token_client(make_user(None)), action, world)
    assert response.status_code == 403


@pytest.mark.parametrize("action", READS + CONTROLS + MANAGES, ids=lambda a: a.name)
def test_public_read_opens_reading_only(world: World, action: Action) -> None:
    with override_settings(CUTLINE={**settings.CUTLINE, "PUBLIC_READ": True}):
        response = call(APIClient(), action, world)
    assert response.status_code == (action.ok if action in READS else 401)


def test_a_staff_group_member_without_the_staff_flag_cannot_manage(world: World) -> None:
    user = make_user("staff")
    user.is_staff = False
    user.save()
    response = token_client(user).post("/api/topologies/", topo.ring(3, name="new"), format="json")
    assert response.status_code == 403


def test_the_staff_flag_alone_does_not_manage(world: World) -> None:
    user = make_user(None)
    user.is_staff = True
    user.save()
    response = token_client(user).post("/api/topologies/", topo.ring(3, name="new"), format="json")
    assert response.status_code == 403


def test_a_bad_token_is_refused() -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    response = client.get("/api/snapshots/")
    assert response.status_code == 401 and response.json()["detail"] == "Invalid token."


def session_client(role: str) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(make_user(role))
    return client


@pytest.mark.parametrize("action", CONTROLS + MANAGES, ids=lambda a: a.name)
def test_session_writes_without_the_csrf_token_are_refused(world: World, action: Action) -> None:
    response = call(session_client("staff"), action, world)
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


@pytest.mark.parametrize("action", CONTROLS + MANAGES, ids=lambda a: a.name)
def test_session_writes_with_the_csrf_token_pass(world: World, action: Action) -> None:
    client = session_client("staff")
    client.get("/accounts/login/")  # any page with a form sets the CSRF cookie
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert call(client, action, world).status_code == action.ok


def test_session_reads_need_no_csrf_token(world: World) -> None:
    assert session_client("viewer").get("/api/snapshots/").status_code == 200


@pytest.mark.parametrize("url", ["/api/", "/api/schema/", "/api/docs/"])
def test_the_api_description_is_open_to_all(url: str) -> None:
    assert APIClient().get(url).status_code == 200


def test_grantrole_gives_a_role_and_staff_the_admin_flag() -> None:
    make_user(None, "alice")
    call_command("grantrole", "alice", "operator")
    call_command("grantrole", "bob", "staff", "--create")
    users = get_user_model().objects
    assert users.get(username="alice").has_perm("snapshots.control_run")
    assert not users.get(username="alice").is_staff
    bob = users.get(username="bob")
    assert bob.is_staff and bob.has_perm("snapshots.add_topology")
    with pytest.raises(CommandError, match="no user 'carol'; pass --create"):
        call_command("grantrole", "carol", "viewer")
