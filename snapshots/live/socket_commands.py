"""What a dashboard may ask of a run over its WebSocket, checked before anything happens.

A command is a JSON object ``{"command": NAME, ...}`` with an optional ``id`` the reply
echoes. :func:`parse` validates its shape (pure); :func:`execute` checks the user's
permission and carries it out through the services, which hold every rule about runs
and snapshots. Whatever is refused raises :class:`CommandError` with a sentence the page
shows as it is; nothing has changed when it is raised.

The commands, each a control action (``snapshots.control_run``):

* ``start`` / ``pause`` / ``stop``; ``rate`` ``{"rate": 5}``;
* ``snapshot`` ``{"process": "p2", "algorithm": "lai-yang"}`` (both optional);
* ``restore`` ``{"snapshot": 12}`` — the run goes back to what snapshot 12 recorded;
* ``watch`` ``{"condition": "balance < 10", "process": "p1" | null, "mode": "once" |
  "every", "cooldown_s": 5, "algorithm": …}`` and ``unwatch`` ``{"watchpoint": 3}``;
* ``faults`` ``{"channel": "p1→p2" (or "p1->p2"), "faults": {"delay_ms": 100, "reorder": true, "loss": 0.2}}``
  (``{}``: a plain channel again).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cluster.core import safejson
from cluster.core.wire import CHANDY_LAMPORT, normal_channel_id
from snapshots import recovery, services, watchpoints
from snapshots.live.frames import ReplyFrame, run_settings
from snapshots.models import Run, Snapshot
from snapshots.presenter import snapshot_summary, watchpoints_of
from snapshots.roles import can_control

log = logging.getLogger("cutline.commands")

# command → the run status it asks for
STATUS_COMMANDS = {"start": Run.Status.RUNNING, "pause": Run.Status.PAUSED, "stop": Run.Status.STOPPED}
COMMANDS = (*STATUS_COMMANDS, "rate", "snapshot", "restore", "watch", "unwatch", "faults")
# Commands that may take seconds (a restore waits for the workers to let go of the run):
# the consumer runs them off the thread every other page's database work shares.
SLOW_COMMANDS = frozenset({"restore"})
MAX_TEXT = 4096  # bytes: no command is longer
MAX_CONDITION = 200  # characters, as the watchpoint's column holds


class CommandError(ValueError):
    """A command that was not carried out, with the reason in words for the page."""


@dataclass(frozen=True)
class Command:
    name: str
    id: Any = None
    args: dict[str, Any] = field(default_factory=dict)


def parse(text: str | None) -> Command:
    if not text:
        raise CommandError('empty command: send a JSON object such as {"command": "pause"}')
    if len(text) > MAX_TEXT:
        raise CommandError(f"command too long ({len(text)} bytes; at most {MAX_TEXT})")
    try:
        data = safejson.loads(text)  # 4 KB nest 2,000 deep: json.loads would recurse out
    except safejson.JSONInputError as exc:
        raise CommandError(f"malformed command: not JSON we read ({exc})") from None
    if not isinstance(data, dict):
        raise CommandError('malformed command: send a JSON object such as {"command": "pause"}')
    ident = data.get("id")
    if ident is not None and not isinstance(ident, (int, str)):
        raise CommandError("malformed command: 'id' must be a number or a string")
    name = data.get("command")
    if name not in COMMANDS:
        raise CommandError(f"unknown command {name!r}; known: {', '.join(COMMANDS)}")
    parser = _PARSERS.get(name)
    return Command(name, ident, parser(data) if parser else {})


# --- the shape of each command's arguments (their values are the services' to judge) ------------


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def _whole(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and value > 0


def _name(data: dict[str, Any], key: str, what: str) -> str | None:
    value = data.get(key)
    if value is not None and (not isinstance(value, str) or not value):
        raise CommandError(f"'{key}' must name {what}")
    return value


def _rate(data: dict[str, Any]) -> dict[str, Any]:
    rate = data.get("rate")
    if not _number(rate):
        raise CommandError("the rate must be a number of steps per second per process")
    return {"rate": float(rate)}


def _snapshot(data: dict[str, Any]) -> dict[str, Any]:
    process = _name(data, "process", "the process that starts the snapshot")
    algorithm = _name(data, "algorithm", "an algorithm: chandy-lamport or lai-yang")
    return {"process": process, "algorithm": algorithm or CHANDY_LAMPORT}


def _restore(data: dict[str, Any]) -> dict[str, Any]:
    snapshot = data.get("snapshot")
    if not _whole(snapshot):
        raise CommandError("'snapshot' must be the id of the snapshot to restore the run from")
    return {"snapshot": snapshot}


def _watch(data: dict[str, Any]) -> dict[str, Any]:
    condition = data.get("condition")
    if not isinstance(condition, str) or not condition.strip():
        raise CommandError("give the watchpoint a condition, e.g. balance < 10")
    if len(condition) > MAX_CONDITION:
        raise CommandError(f"the condition is too long ({len(condition)} characters; at most {MAX_CONDITION})")
    cooldown = data.get("cooldown_s", 5.0)
    if not _number(cooldown):
        raise CommandError("'cooldown_s' must be a number of seconds")
    mode = data.get("mode", "once")
    if not isinstance(mode, str):
        raise CommandError("'mode' must be once or every")
    return {
        "condition": condition.strip(),
        "process": _name(data, "process", "the process to watch (or be null: every process)"),
        "mode": mode,
        "cooldown_s": float(cooldown),
        "algorithm": _name(data, "algorithm", "an algorithm: chandy-lamport or lai-yang") or CHANDY_LAMPORT,
    }


def _unwatch(data: dict[str, Any]) -> dict[str, Any]:
    watchpoint = data.get("watchpoint")
    if not _whole(watchpoint):
        raise CommandError("'watchpoint' must be the id of the watchpoint to remove")
    return {"watchpoint": watchpoint}


def _faults(data: dict[str, Any]) -> dict[str, Any]:
    channel = _name(data, "channel", 'a channel, e.g. "p1→p2"')
    if channel is None:
        raise CommandError("'channel' must name a channel, e.g. \"p1→p2\"")
    faults = data.get("faults")
    if not isinstance(faults, dict):
        raise CommandError('\'faults\' must be an object such as {"delay_ms": 100, "reorder": true, "loss": 0.2}')
    # "p1->p2" too, as the REST API and the CLI accept it; the reply names it as Cutline spells it.
    return {"channel": normal_channel_id(channel), "faults": faults}


_PARSERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "rate": _rate,
    "snapshot": _snapshot,
    "restore": _restore,
    "watch": _watch,
    "unwatch": _unwatch,
    "faults": _faults,
}


# --- carrying them out ---------------------------------------------------------------------


def execute(command: Command, run_id: int, user: Any) -> ReplyFrame:
    """Carry out a parsed command for ``user``; return the reply for the page."""
    if not can_control(user):
        raise CommandError("you are not allowed to control runs (you need the “control run” permission)")
    try:
        run = services.get_run(run_id)
        extra = _EXECUTORS[command.name](run, command.args, user)
    except services.ServiceError as exc:
        raise CommandError(str(exc)) from None
    run.refresh_from_db()
    return {**_reply(command, run), **extra}  # type: ignore[typeddict-item]  # extra: the reply's optional fields


def _set_status(status: str) -> Callable[[Run, dict[str, Any], Any], dict[str, Any]]:
    def run_status(run: Run, args: dict[str, Any], user: Any) -> dict[str, Any]:
        services.set_run_status(run, status)
        return {}

    return run_status


def _do_rate(run: Run, args: dict[str, Any], user: Any) -> dict[str, Any]:
    services.set_run_rate(run, args["rate"])
    return {}


def _do_snapshot(run: Run, args: dict[str, Any], user: Any) -> dict[str, Any]:
    snapshot = services.start_snapshot(run, args["process"], user=user, algorithm=args["algorithm"])
    return {"snapshot": snapshot_summary(snapshot)}


def _do_restore(run: Run, args: dict[str, Any], user: Any) -> dict[str, Any]:
    snapshot = Snapshot.objects.filter(pk=args["snapshot"], run=run).first()
    if snapshot is None:
        raise CommandError(f"run {run.pk} has no snapshot {args['snapshot']}")
    return {"restore": recovery.restore_run(run, snapshot, user).to_dict()}


def _do_watch(run: Run, args: dict[str, Any], user: Any) -> dict[str, Any]:
    # The other pages are told by the service itself (``watch.publish_watchpoints``),
    # whoever changes the watchpoints: the dashboard, the API, the CLI or the admin.
    watchpoint = watchpoints.add_watchpoint(run, user=user, **args)
    return {"watchpoint": watchpoint.to_dict(), "watchpoints": watchpoints_of(run)}


def _do_unwatch(run: Run, args: dict[str, Any], user: Any) -> dict[str, Any]:
    watchpoints.remove_watchpoint(watchpoints.get_watchpoint(run, args["watchpoint"]))
    return {"watchpoint": {"id": args["watchpoint"]}, "watchpoints": watchpoints_of(run)}


def _do_faults(run: Run, args: dict[str, Any], user: Any) -> dict[str, Any]:
    faults = services.set_channel_faults(run, {args["channel"]: args["faults"]})
    return {"channel": args["channel"], "faults": faults}


_EXECUTORS: dict[str, Callable[[Run, dict[str, Any], Any], dict[str, Any]]] = {
    **{name: _set_status(status) for name, status in STATUS_COMMANDS.items()},
    "rate": _do_rate,
    "snapshot": _do_snapshot,
    "restore": _do_restore,
    "watch": _do_watch,
    "unwatch": _do_unwatch,
    "faults": _do_faults,
}


def _reply(command: Command, run: Run) -> ReplyFrame:
    return {
        "type": "reply",
        "id": command.id,
        "command": command.name,
        "run_settings": run_settings(
            {"status": run.status, "rate": run.rate, "epoch": run.epoch, "faults": run.faults}
        ),
    }
