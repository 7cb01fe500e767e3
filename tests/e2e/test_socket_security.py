"""What a hostile user did with the run socket (issue 15), each now refused.

A socket re-reads its user for every command: roles taken away, an account deactivated
or a session ended (logout) take effect on an open socket at once, and an idle socket is
closed once its session ends. A page on another port of the same host is another origin.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session

from snapshots import services
from snapshots.live import consumers
from snapshots.models import Run
from tests.e2e.test_consumers import TIMEOUT, receive, run_async, session, socket

pytestmark = pytest.mark.django_db(transaction=True)

COMMANDS = (
    {"command": "rate", "rate": 7},
    {"command": "pause"},
    {"command": "start"},
    {"command": "snapshot"},
    {"command": "faults", "channel": "p1→p2", "faults": {"reorder": True}},
)


@pytest.fixture
def run(ring3: Any) -> Run:
    return services.start_run(ring3, rate=1.0, seed=7)


def _settings_of(run: Run) -> tuple[Any, ...]:
    run.refresh_from_db()
    return (run.status, run.rate, run.faults, run.snapshots.count())


def _take_roles(user: User) -> None:
    user.groups.clear()


def _deactivate(user: User) -> None:
    user.is_active = False
    user.save(update_fields=["is_active"])


def _log_out(user: User) -> None:
    Session.objects.all().delete()  # what logout does to the session row


@pytest.mark.parametrize(
    ("lose", "code", "words"),
    [
        (_take_roles, consumers.CLOSE_FORBIDDEN, "ask an administrator"),
        (_deactivate, consumers.CLOSE_UNAUTHORISED, "session has ended"),
        (_log_out, consumers.CLOSE_UNAUTHORISED, "session has ended"),
    ],
    ids=["roles-removed", "deactivated", "logged-out"],
)
@pytest.mark.parametrize("command", COMMANDS, ids=[c["command"] for c in COMMANDS])
def test_an_open_socket_loses_what_its_user_lost(
    run: Run, make_user: Callable[..., Any], lose: Callable[[User], None], code: int, words: str, command: Any
) -> None:
    user = make_user("olga", "operator")
    cookie = session(user)
    before = _settings_of(run)

    async def scenario() -> None:
        ws = socket(run.pk, cookie)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        assert (await receive(ws))["permissions"] == {"control": True}
        await database_sync_to_async(lose)(user)
        await ws.send_to(text_data=json.dumps(command))
        error = await receive(ws)
        assert error["type"] == "error" and words in error["message"]
        assert await ws.receive_output(timeout=TIMEOUT) == {"type": "websocket.close", "code": code}

    run_async(scenario)
    assert _settings_of(run) == before


def test_a_viewer_made_operator_may_control_at_once(run: Run, make_user: Callable[..., Any]) -> None:
    user = make_user("vera", "viewer")
    cookie = session(user)

    async def scenario() -> None:
        ws = socket(run.pk, cookie)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        await database_sync_to_async(lambda: user.groups.add(*user.groups.model.objects.filter(name="operator")))()
        await ws.send_to(text_data=json.dumps({"command": "pause", "id": 1}))
        reply = await receive(ws)
        assert reply["type"] == "reply" and reply["run_settings"]["status"] == "paused"
        await ws.disconnect()

    run_async(scenario)


def test_an_idle_socket_is_closed_when_its_session_ends(
    run: Run, make_user: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(consumers, "SESSION_CHECK_INTERVAL", 0.2)
    cookie = session(make_user("vera", "viewer"))

    async def scenario() -> None:
        ws = socket(run.pk, cookie)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        await database_sync_to_async(_log_out)(None)  # type: ignore[arg-type]
        while (frame := json.loads(await ws.receive_from(timeout=TIMEOUT)))["type"] != "error":
            assert frame["type"] == "heartbeat"  # frames may arrive until the check
        assert "session has ended" in frame["message"]
        close = await ws.receive_output(timeout=TIMEOUT)
        assert close == {"type": "websocket.close", "code": consumers.CLOSE_UNAUTHORISED}

    run_async(scenario)


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        (b"http://127.0.0.1:8000", b"127.0.0.1:8000", True),
        (b"http://localhost", b"localhost", True),
        (b"https://localhost", b"localhost", True),
        (b"http://127.0.0.1:9999", b"127.0.0.1:8000", False),  # another port: another origin
        (b"http://127.0.0.1", b"127.0.0.1:8000", False),
        (b"http://evil.example:8000", b"evil.example:8000", False),  # not in ALLOWED_HOSTS
        (b"null", b"127.0.0.1:8000", False),
        (b"http://127.0.0.1:8000/path", b"127.0.0.1:8000", False),
    ],
)
def test_only_the_sites_own_origin_opens_a_socket(
    run: Run, make_user: Callable[..., Any], origin: bytes, host: bytes, allowed: bool
) -> None:
    cookie = session(make_user("olga", "operator"))

    async def scenario() -> None:
        ws = socket(run.pk, cookie, origin=origin, host=host)
        connected, _ = await ws.connect(timeout=TIMEOUT)
        assert connected is allowed
        if connected:
            await ws.disconnect()

    run_async(scenario)


def test_a_trusted_origin_on_another_port_opens_a_socket(
    run: Run, make_user: Callable[..., Any], settings: Any
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["http://127.0.0.1:9999"]
    cookie = session(make_user("olga", "operator"))

    async def scenario() -> None:
        ws = socket(run.pk, cookie, origin=b"http://127.0.0.1:9999", host=b"127.0.0.1:8000")
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await ws.disconnect()

    run_async(scenario)


def test_faults_accept_the_ascii_arrow_as_rest_does(run: Run, make_user: Callable[..., Any]) -> None:
    cookie = session(make_user("olga", "operator"))

    async def scenario() -> None:
        ws = socket(run.pk, cookie)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        command = {"command": "faults", "channel": "p1->p2", "faults": {"delay_ms": 50}, "id": 3}
        await ws.send_to(text_data=json.dumps(command))
        reply = await receive(ws)
        assert reply["type"] == "reply" and reply["channel"] == "p1→p2", reply
        await ws.disconnect()

    run_async(scenario)
    run.refresh_from_db()
    assert run.faults["p1→p2"]["delay_ms"] == 50


def test_a_command_nested_too_deep_is_refused_in_words(run: Run, make_user: Callable[..., Any]) -> None:
    cookie = session(make_user("olga", "operator"))

    async def scenario() -> None:
        ws = socket(run.pk, cookie)
        assert (await ws.connect(timeout=TIMEOUT))[0]
        await receive(ws)
        await ws.send_to(text_data="[" * 2000 + "]" * 2000)
        error = await receive(ws)
        assert error["type"] == "error" and "nested 2000 levels deep" in error["message"]
        await ws.disconnect()

    run_async(scenario)
