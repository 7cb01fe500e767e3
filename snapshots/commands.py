"""What a dashboard may ask of a run over its WebSocket, checked before anything happens.

A command is a JSON object ``{"command": NAME, ...}`` with an optional ``id`` the reply
echoes. :func:`parse` validates its shape (pure); :func:`execute` checks the user's
permission and carries it out through the services, which hold every rule about runs
and snapshots. Whatever is refused raises :class:`CommandError` with a sentence the page
shows as it is; nothing has changed when it is raised.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from snapshots import services
from snapshots.models import Run
from snapshots.stream import can_control, snapshot_summary

# command → the run status it asks for
STATUS_COMMANDS = {"start": Run.Status.RUNNING, "pause": Run.Status.PAUSED, "stop": Run.Status.STOPPED}
COMMANDS = (*STATUS_COMMANDS, "rate", "snapshot")
MAX_TEXT = 4096  # bytes: no command is longer


class CommandError(ValueError):
    """A command that was not carried out, with the reason in words for the page."""


@dataclass(frozen=True)
class Command:
    name: str
    id: Any = None
    rate: float | None = None
    process: str | None = None


def parse(text: str | None) -> Command:
    if not text:
        raise CommandError('empty command: send a JSON object such as {"command": "pause"}')
    if len(text) > MAX_TEXT:
        raise CommandError(f"command too long ({len(text)} bytes; at most {MAX_TEXT})")
    try:
        data = json.loads(text)
    except ValueError:
        raise CommandError("malformed command: not JSON") from None
    if not isinstance(data, dict):
        raise CommandError('malformed command: send a JSON object such as {"command": "pause"}')
    ident = data.get("id")
    if ident is not None and not isinstance(ident, (int, str)):
        raise CommandError("malformed command: 'id' must be a number or a string")
    name = data.get("command")
    if name not in COMMANDS:
        raise CommandError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    if name == "rate":
        rate = data.get("rate")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not math.isfinite(rate):
            raise CommandError("the rate must be a number of steps per second per process")
        return Command(name, ident, rate=float(rate))
    if name == "snapshot":
        process = data.get("process")
        if process is not None and (not isinstance(process, str) or not process):
            raise CommandError("'process' must name the process that starts the snapshot")
        return Command(name, ident, process=process)
    return Command(name, ident)


def execute(command: Command, run_id: int, user: Any) -> dict[str, Any]:
    """Carry out a parsed command for ``user``; return the reply for the page."""
    if not can_control(user):
        raise CommandError("you are not allowed to control runs (you need the “control run” permission)")
    try:
        run = services.get_run(run_id)
        if command.name in STATUS_COMMANDS:
            run = services.set_run_status(run, STATUS_COMMANDS[command.name])
        elif command.name == "rate":
            assert command.rate is not None
            run = services.set_run_rate(run, command.rate)
        else:
            snapshot = services.start_snapshot(run, command.process, user=user)
            return {**_reply(command, run), "snapshot": snapshot_summary(snapshot)}
    except services.ServiceError as exc:
        raise CommandError(str(exc)) from None
    return _reply(command, run)


def _reply(command: Command, run: Run) -> dict[str, Any]:
    return {
        "type": "reply",
        "id": command.id,
        "command": command.name,
        "run_settings": {"status": run.status, "rate": run.rate},
    }
