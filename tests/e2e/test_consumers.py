"""The run socket, end to end through the ASGI application: origin and session checks,
the state on connect, frames from a real publisher in order, commands and refusals.

Each test drives the whole stack a browser would reach (``config.asgi.application``
with its origin validator and auth middleware) through ``WebsocketCommunicator``, with
the real channel layer on this session's Redis. Frames come from a real
:class:`~snapshots.live.publisher.Publisher` fed with real process steps, so the tests cover
the worker's side of the stream too; only the workers themselves are left out (they
are in the browser tests).
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from cluster.core.process import SimulatedProcess
from cluster.engine.store import StepCommit
from snapshots import recovery, services, signals
from snapshots import watchpoints as watch
from snapshots.live import consumers
from snapshots.live.publisher import Publisher
from snapshots.models import Restore, Run, Snapshot, Watchpoint

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = b"http://localhost"
HOST = b"localhost"  # the server the page's browser connected to: the same origin
TIMEOUT = 20  # seconds to wait for a frame: generous, the machine may be busy


def run_async(scenario: Callable[[], Awaitable[None]]) -> None:
    async_to_sync(scenario)()


def session(user: Any) -> bytes:
    """The cookie of a signed-in browser session of ``user`` (made outside the event loop)."""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


def socket(
    run_id: int, cookie: bytes | None = None, origin: bytes = ORIGIN, host: bytes = HOST
) -> WebsocketCommunicator:
    from config.asgi import application

    headers = [(b"origin", origin), (b"host", host)]
    if cookie is not None:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, f"/ws/runs/{run_id}/", headers=headers)


async def receive(ws: WebsocketCommunicator) -> dict[str, Any]:
    return json.loads(await ws.receive_from(timeout=TIMEOUT))


class Clock:
    """A publisher's clock that moves only when told: every flush is a new frame."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def publisher(redis_url: str) -> Any:
    clock = Clock()
    pub = Publisher(redis_url, clock=clock)
    yield pub
    pub.close()


def act(run: Run, name: str, publisher: Publisher) -> SimulatedProcess:
    """One workload step of a process, committed to the store and handed to the publisher
    exactly as a worker does; then the publisher flushes one frame."""
    store = services.store()
    proc = SimulatedProcess.from_dict(store.load_process(run.pk, name))
    step = proc.act(random.Random(len(proc.sent) + proc.counters["messages_sent"]), run.params)
    store.commit_steps(run.pk, [StepCommit(name, proc.to_dict(), [], [], [])])
    publisher.on_step(run.pk, proc, step)
    publisher.clock.now += 1.0
    publisher.flush()
    assert publisher.sender.wait_sent(TIMEOUT)
    return proc


@pytest.fixture
def run(ring3: Any) -> Run:
    return services.start_run(ring3, rate=1.0, seed=7)


@pytest.fixture
def viewer(make_user: Callable[..., Any]) -> bytes:
    """The session cookie of a signed-in viewer."""
    return session(make_user("vera", "viewer"))


@pytest.fixture
def operator(make_user: Callable[..., Any]) -> bytes:
    """The session cookie of a signed-in operator."""
    return session(make_user("olga", "operator"))


# --- who gets in ----------------------------------------------------------------------------


def test_connect_gets_the_current_state(run: Run, viewer: bytes, publisher: Publisher) -> None:
    moved = [act(run, "p1", publisher) for _ in range(3)][-1]

    async def scenario() -> None:
        ws = socket(run.pk, viewer)
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected
        state = await receive(ws)
        assert state["type"] == "state"
        assert state["run"]["id"] == run.pk and state["run"]["status"] == "running"
        by_name = {p["name"]: p for p in state["processes"]}
        assert sorted(by_name) == ["p1", "p2", "p3"]
        assert by_name["p1"]["state"] == moved.state
        assert by_name["p1"]["sent"] == moved.sent
        assert sorted(state["channels"]) == sorted(f"{s}→{d}" for s, d in run.channel_pairs)
        # The state already holds the three frames published so far.
        assert state["cursors"] == {publisher.source: 3}
        assert state["permissions"] == {"control": False}
        await ws.disconnect()

    run_async(scenario)


def test_deltas_arrive_in_order_after_the_state(run: Run, viewer: bytes, publisher: Publisher) -> None:
    async def scenario() -> None:
        ws = socket(run.pk, viewer)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        assert (await receive(ws))["cursors"] == {}
        balances = []
        for _ in range(6):
            proc = await database_sync_to_async(act)(run, "p2", publisher)
            balances.append(proc.state["balance"])
        frames = [await receive(ws) for _ in range(6)]
        assert [f["seq"] for f in frames] == [1, 2, 3, 4, 5, 6]
        assert {f["source"] for f in frames} == {publisher.source}
        assert [f["processes"]["p2"]["state"]["balance"] for f in frames] == balances
        # Compact: after the first frame, only what changed is sent.
        assert set(frames[-1]["processes"]["p2"]) <= {"state", "sent", "clock", "counters"}
        await ws.disconnect()

    run_async(scenario)


def test_two_runs_never_leak_into_each_other(ring3: Any, viewer: bytes, publisher: Publisher) -> None:
    first = services.start_run(ring3, rate=1.0)
    second = services.start_run(ring3, rate=1.0)

    async def scenario() -> None:
        a, b = socket(first.pk, viewer), socket(second.pk, viewer)
        for ws in (a, b):
            assert (await ws.connect(timeout=TIMEOUT))[0]
            await receive(ws)
        # Frames of both runs leave the publisher on one connection, in this order, so
        # anything of the other run that reached a socket would arrive before its own.
        for _ in range(3):
            await database_sync_to_async(act)(second, "p1", publisher)
            await database_sync_to_async(act)(first, "p3", publisher)
        for ws, mine, name in ((a, first, "p3"), (b, second, "p1")):
            frames = [await receive(ws) for _ in range(3)]
            assert [f["run"] for f in frames] == [mine.pk] * 3
            assert all(set(f["processes"]) == {name} for f in frames)
            await ws.disconnect()

    run_async(scenario)


def test_pages_of_one_run_share_its_frames_and_a_late_page_starts_from_the_state(
    run: Run, viewer: bytes, publisher: Publisher
) -> None:
    async def scenario() -> None:
        early = [socket(run.pk, viewer) for _ in range(2)]
        for ws in early:
            assert (await ws.connect(timeout=TIMEOUT))[0]
            await receive(ws)
        await database_sync_to_async(act)(run, "p1", publisher)
        for ws in early:
            assert (await receive(ws))["seq"] == 1
        late = socket(run.pk, viewer)
        assert (await late.connect(timeout=TIMEOUT))[0]
        state = await receive(late)
        assert state["type"] == "state" and state["cursors"] == {publisher.source: 1}
        await database_sync_to_async(act)(run, "p1", publisher)
        for ws in [*early, late]:
            assert (await receive(ws))["seq"] == 2
            await ws.disconnect()

    run_async(scenario)


def test_anonymous_users_see_nothing(run: Run) -> None:
    async def scenario() -> None:
        ws = socket(run.pk)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        error = await receive(ws)
        assert error == {"type": "error", "id": None, "command": None, "message": "Log in to watch runs."}
        assert (await ws.receive_output(timeout=TIMEOUT))["type"] == "websocket.close"

    run_async(scenario)


def test_users_without_the_viewer_role_see_nothing(run: Run, make_user: Callable[..., Any]) -> None:
    nobody = session(make_user("nora"))

    async def scenario() -> None:
        ws = socket(run.pk, nobody)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        assert "viewer role" in (await receive(ws))["message"]
        close = await ws.receive_output(timeout=TIMEOUT)
        assert close == {"type": "websocket.close", "code": consumers.CLOSE_FORBIDDEN}

    run_async(scenario)


def test_public_read_lets_anonymous_users_watch_but_not_control(run: Run, settings: Any) -> None:
    settings.CUTLINE = {**settings.CUTLINE, "PUBLIC_READ": True}

    async def scenario() -> None:
        ws = socket(run.pk)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        state = await receive(ws)
        assert state["type"] == "state" and state["permissions"] == {"control": False}
        await ws.send_to(text_data=json.dumps({"command": "pause", "id": 1}))
        error = await receive(ws)
        assert error["type"] == "error" and error["id"] == 1 and "not allowed" in error["message"]
        await ws.disconnect()

    run_async(scenario)
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING


def test_a_page_from_another_origin_is_refused(run: Run, viewer: bytes) -> None:
    async def scenario() -> None:
        ws = socket(run.pk, viewer, origin=b"http://evil.example")
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert not connected

    run_async(scenario)


def test_an_unknown_run_is_refused(viewer: bytes) -> None:
    async def scenario() -> None:
        ws = socket(999_999, viewer)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        assert (await receive(ws))["message"] == "There is no run 999999."
        close = await ws.receive_output(timeout=TIMEOUT)
        assert close == {"type": "websocket.close", "code": consumers.CLOSE_NOT_FOUND}

    run_async(scenario)


# --- commands ----------------------------------------------------------------------------------


def snapshot_of_the_run(run: Run) -> tuple[Any, ...]:
    run.refresh_from_db()
    meta = services.store().run_meta(run.pk)
    return (
        run.status,
        run.rate,
        meta["status"],
        meta["rate"],
        Snapshot.objects.filter(run=run).count(),
        run.faults,
        meta["faults"],
        list(Watchpoint.objects.filter(run=run).values_list("id", flat=True)),
        meta["watchpoints"],
        Restore.objects.filter(run=run).count(),
    )


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("pause!", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"command": "explode"}', "unknown command 'explode'"),
        ('{"command": "rate", "rate": "fast"}', "must be a number"),
        ('{"command": "rate", "rate": 1e9}', "at most 10000"),
        ('{"command": "rate", "rate": -1}', "above 0"),
        ('{"command": "snapshot", "process": "p9"}', "has no process 'p9'"),
        ('{"command": "snapshot", "process": 7}', "must name the process"),
        ('{"command": "pause", "id": {"a": 1}}', "'id' must be"),
        ('{"command": "snapshot", "algorithm": 7}', "'algorithm' must name an algorithm"),
        ('{"command": "snapshot", "algorithm": "paxos"}', "unknown algorithm 'paxos'"),
        ('{"command": "restore"}', "'snapshot' must be the id"),
        ('{"command": "restore", "snapshot": true}', "'snapshot' must be the id"),
        ('{"command": "restore", "snapshot": 999999}', "has no snapshot 999999"),
        ('{"command": "watch"}', "give the watchpoint a condition"),
        ('{"command": "watch", "condition": "   "}', "give the watchpoint a condition"),
        ('{"command": "watch", "condition": "' + "x" * 201 + '"}', "too long (201 characters"),
        ('{"command": "watch", "condition": "balance <", "process": "p1"}', "col "),
        ('{"command": "watch", "condition": "balance < 1", "process": 3}', "'process' must name"),
        ('{"command": "watch", "condition": "balance < 1", "process": "p9"}', "has no process 'p9'"),
        ('{"command": "watch", "condition": "balance < 1", "mode": "twice"}', "unknown mode 'twice'"),
        ('{"command": "watch", "condition": "balance < 1", "cooldown_s": "soon"}', "must be a number of seconds"),
        ('{"command": "unwatch", "watchpoint": "3"}', "'watchpoint' must be the id"),
        ('{"command": "unwatch", "watchpoint": 999999}', "has no watchpoint 999999"),
        ('{"command": "faults", "faults": {}}', "'channel' must name a channel"),
        ('{"command": "faults", "channel": "p1→p2", "faults": [1]}', "'faults' must be an object"),
        ('{"command": "faults", "channel": "p1→p9", "faults": {}}', "has no channel 'p1→p9'"),
        ('{"command": "faults", "channel": "p1→p2", "faults": {"loss": 2}}', "loss"),
    ],
)
def test_a_malformed_command_gets_an_error_and_changes_nothing(
    run: Run, operator: bytes, text: str, words: str
) -> None:
    before = snapshot_of_the_run(run)

    async def scenario() -> None:
        ws = socket(run.pk, operator)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        assert (await receive(ws))["permissions"] == {"control": True}
        await ws.send_to(text_data=text)
        error = await receive(ws)
        assert error["type"] == "error"
        assert words in error["message"]
        await ws.disconnect()

    run_async(scenario)
    assert snapshot_of_the_run(run) == before


def test_an_unauthorised_command_gets_an_error_and_changes_nothing(run: Run, viewer: bytes) -> None:
    sound = complete_snapshot(run)
    watchpoint = watch.add_watchpoint(run, "balance < 10")
    before = snapshot_of_the_run(run)

    async def scenario() -> None:
        ws = socket(run.pk, viewer)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        refused = (
            {"command": "stop", "id": 5},
            {"command": "snapshot", "process": "p1", "id": 6},
            {"command": "restore", "snapshot": sound.pk, "id": 7},
            {"command": "watch", "condition": "balance < 10", "id": 8},
            {"command": "unwatch", "watchpoint": watchpoint.pk, "id": 9},
            {"command": "faults", "channel": "p1→p2", "faults": {"reorder": True}, "id": 10},
        )
        for command in refused:
            await ws.send_to(text_data=json.dumps(command))
            error = await receive(ws)
            assert error["type"] == "error" and error["id"] == command["id"]
            assert error["message"].startswith("you are not allowed to control runs")
        await ws.disconnect()

    run_async(scenario)
    assert snapshot_of_the_run(run) == before


def test_an_operator_pauses_sets_the_rate_and_takes_a_snapshot(run: Run, operator: bytes) -> None:
    async def scenario() -> None:
        ws = socket(run.pk, operator)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        await ws.send_to(text_data=json.dumps({"command": "pause", "id": 1}))
        reply = await receive(ws)
        assert reply == {
            "type": "reply",
            "id": 1,
            "command": "pause",
            "run_settings": {"status": "paused", "rate": 1.0, "epoch": 0, "faults": {}},
        }
        await ws.send_to(text_data=json.dumps({"command": "rate", "rate": 12.5, "id": 2}))
        assert (await receive(ws))["run_settings"] == {"status": "paused", "rate": 12.5, "epoch": 0, "faults": {}}
        await ws.send_to(text_data=json.dumps({"command": "snapshot", "process": "p2", "id": 3}))
        reply = await receive(ws)
        assert reply["snapshot"]["initiator"] == "p2" and reply["snapshot"]["status"] == "running"
        assert reply["snapshot"]["algorithm"] == "chandy-lamport"
        await ws.disconnect()

    run_async(scenario)
    assert snapshot_of_the_run(run)[:5] == ("paused", 12.5, "paused", 12.5, 1)


def test_the_heartbeat_carries_the_cursors_and_the_run_settings(
    run: Run, viewer: bytes, publisher: Publisher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "HEARTBEAT_INTERVAL", 0.05)
    act(run, "p1", publisher)

    async def scenario() -> None:
        ws = socket(run.pk, viewer)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        beat = await receive(ws)
        assert beat["type"] == "heartbeat"
        assert beat["cursors"] == {publisher.source: 1}
        assert beat["run_settings"] == {"status": "running", "rate": 1.0, "epoch": 0, "faults": {}}
        assert beat["fault_counts"] == {"retransmissions": {}, "lost": {}}
        await ws.disconnect()

    run_async(scenario)


# --- watchpoints, faults, algorithms, restore -------------------------------------------------


def complete_snapshot(run: Run) -> Snapshot:
    """A complete, sound snapshot row (its records do not matter to the socket)."""
    verdict = {"consistent": True, "conserved": True, "expected_total": 300, "recorded_total": 300, "problems": []}
    return Snapshot.objects.create(
        run=run,
        initiator="p1",
        status=Snapshot.Status.COMPLETE,
        processes_total=3,
        channels_total=6,
        processes_reported=3,
        channels_reported=6,
        verdict=verdict,
    )


def test_an_operator_adds_and_removes_a_watchpoint_and_every_page_is_told(
    run: Run, operator: bytes, viewer: bytes
) -> None:
    async def scenario() -> None:
        olga, vera = socket(run.pk, operator), socket(run.pk, viewer)
        for ws in (olga, vera):
            assert (await ws.connect(timeout=TIMEOUT))[0]
            assert (await receive(ws))["watchpoints"] == []
        add = {"command": "watch", "condition": "balance < 10", "process": "p2", "mode": "every", "cooldown_s": 2}
        await olga.send_to(text_data=json.dumps({**add, "algorithm": "lai-yang", "id": 1}))
        # The other page hears of it from the server; the operator's page from both.
        told = await receive(vera)
        assert told["type"] == "watchpoints"
        [w] = told["watchpoints"]
        assert (w["condition"], w["process"], w["mode"], w["cooldown_s"], w["algorithm"], w["hits"]) == (
            "balance < 10",
            "p2",
            "every",
            2.0,
            "lai-yang",
            0,
        )
        frames = [await receive(olga), await receive(olga)]
        reply = next(f for f in frames if f["type"] == "reply")
        assert reply["id"] == 1 and reply["watchpoint"]["id"] == w["id"] and reply["watchpoints"] == [w]
        await olga.send_to(text_data=json.dumps({"command": "unwatch", "watchpoint": w["id"], "id": 2}))
        assert (await receive(vera)) == {"type": "watchpoints", "run": run.pk, "watchpoints": []}
        for ws in (olga, vera):
            await ws.disconnect()

    run_async(scenario)
    assert services.store().run_meta(run.pk)["watchpoints"] == []


def test_a_condition_with_a_mistake_is_refused_pointing_at_it(run: Run, operator: bytes) -> None:
    async def scenario() -> None:
        ws = socket(run.pk, operator)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        await ws.send_to(text_data=json.dumps({"command": "watch", "condition": "balance <> 3", "id": 4}))
        error = await receive(ws)
        assert (error["type"], error["id"], error["command"]) == ("error", 4, "watch")
        assert "col 9" in error["message"]
        await ws.disconnect()

    run_async(scenario)
    assert not Watchpoint.objects.exists()


def test_an_operator_sets_a_channels_faults_and_takes_a_lai_yang_snapshot(run: Run, operator: bytes) -> None:
    async def scenario() -> None:
        ws = socket(run.pk, operator)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        faults = {"delay_ms": 50, "reorder": True, "loss": 0.2}
        await ws.send_to(text_data=json.dumps({"command": "faults", "channel": "p1→p2", "faults": faults, "id": 1}))
        reply = await receive(ws)
        assert reply["channel"] == "p1→p2" and reply["faults"]["p1→p2"] == faults
        assert reply["run_settings"]["faults"] == reply["faults"]
        await ws.send_to(text_data=json.dumps({"command": "snapshot", "algorithm": "lai-yang", "id": 2}))
        reply = await receive(ws)
        assert reply["snapshot"]["algorithm"] == "lai-yang" and reply["snapshot"]["initiator"] == "p1"
        await ws.disconnect()

    run_async(scenario)
    run.refresh_from_db()
    assert run.faults["p1→p2"]["reorder"] is True
    assert services.store().run_meta(run.pk)["faults"] == run.faults
    assert Snapshot.objects.get(run=run).algorithm == "lai-yang"


def test_a_restore_is_carried_out_and_every_page_starts_over(
    run: Run, operator: bytes, viewer: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command's path and the announcement; the restore itself needs workers (browser test)."""
    sound = complete_snapshot(run)
    asked = []

    def restore_run(run_: Run, snapshot: Snapshot, user: Any = None) -> Restore:
        asked.append((run_.pk, snapshot.pk, user.username))
        restore = Restore.objects.create(run=run_, snapshot=snapshot, epoch=1, replayed_messages=3, dropped_frames=2)
        signals.announce(signals.run_restored, run_.pk)  # as recovery.restore_run does once it is done
        return restore

    monkeypatch.setattr(recovery, "restore_run", restore_run)

    async def scenario() -> None:
        olga, vera = socket(run.pk, operator), socket(run.pk, viewer)
        for ws in (olga, vera):
            assert (await ws.connect(timeout=TIMEOUT))[0]
            assert (await receive(ws))["restores"] == []
        await olga.send_to(text_data=json.dumps({"command": "restore", "snapshot": sound.pk, "id": 3}))
        told = await receive(vera)
        assert told["type"] == "restore" and told["run"] == run.pk
        assert (told["restore"]["snapshot"], told["restore"]["epoch"], told["restore"]["replayed_messages"]) == (
            sound.pk,
            1,
            3,
        )
        frames = [await receive(olga), await receive(olga)]
        reply = next(f for f in frames if f["type"] == "reply")
        assert reply["id"] == 3 and reply["restore"] == told["restore"]
        for ws in (olga, vera):
            await ws.disconnect()

    run_async(scenario)
    assert asked == [(run.pk, sound.pk, "olga")]


def test_a_restore_the_services_refuse_is_an_error_with_their_reason(run: Run, operator: bytes) -> None:
    unsound = complete_snapshot(run)
    unsound.verdict = {**unsound.verdict, "consistent": False}
    unsound.save()
    other = complete_snapshot(services.start_run(run.topology, rate=1.0))

    async def scenario() -> None:
        ws = socket(run.pk, operator)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        await ws.send_to(text_data=json.dumps({"command": "restore", "snapshot": unsound.pk}))
        assert "is not a consistent cut" in (await receive(ws))["message"]
        await ws.send_to(text_data=json.dumps({"command": "restore", "snapshot": other.pk}))
        assert f"run {run.pk} has no snapshot {other.pk}" in (await receive(ws))["message"]
        await ws.disconnect()

    run_async(scenario)
    assert not Restore.objects.exists()
