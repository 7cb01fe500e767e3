"""``manage.py run start | stop | pause | resume | rate | status | events | restore | faults | watch``."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cluster.core.wire import ALGORITHMS, CHANDY_LAMPORT, channel_id, normal_channel_id
from snapshots import presenter, recovery, services
from snapshots import watchpoints as watch
from snapshots.models import Snapshot, Topology, Watchpoint

from ._cli import fault_words, faults_line, service_errors

WORKLOADS = [name for name, _ in Topology.WORKLOADS]
SNAPSHOT_WAIT_EXTRA = 10.0  # seconds a triggered snapshot may take, on top of --wait


def _event_limit(text: str) -> int:
    """--limit as a whole number the log can hold (Redis refuses what a 64-bit index cannot)."""
    most = settings.CUTLINE["EVENT_LOG_LIMIT"]
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= most:
        raise argparse.ArgumentTypeError(f"give a whole number from 1 to {most}, not {text[:30]!r}")
    return int(text)


class Command(BaseCommand):
    help = "Start, steer and inspect runs of a topology on the cluster; restore them, fault their channels, watch them."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="start a run; prints its id on the last line")
        start.add_argument("--topology", required=True)
        start.add_argument("--workload", choices=WORKLOADS, help="default: the topology's")
        start.add_argument("--rate", type=float, help="workload steps per second per process")
        start.add_argument("--seed", type=int, help="seed for the workload's random choices")
        for name, text in [
            ("stop", "stop a run"),
            ("pause", "stop new workload steps; channels drain"),
            ("resume", "resume a paused run"),
        ]:
            sub.add_parser(name, help=text).add_argument("run")
        rate = sub.add_parser("rate", help="change a run's rate")
        rate.add_argument("run")
        rate.add_argument("rate", type=float)
        status = sub.add_parser("status", help="live counters of a run, its channel faults and epoch")
        status.add_argument("run")
        status.add_argument("--json", action="store_true")
        events = sub.add_parser("events", help="the run's logged events (with vector clocks), oldest first")
        events.add_argument("run")
        events.add_argument(
            "--limit",
            type=_event_limit,
            default=100,
            help=f"the newest N events (1 to {settings.CUTLINE['EVENT_LOG_LIMIT']}, what the log keeps)",
        )

        restore = sub.add_parser("restore", help="put a run back into the global state one of its snapshots recorded")
        restore.add_argument("--run", required=True)
        restore.add_argument("--snapshot", required=True, help="a complete, consistent snapshot of the run")
        restore.add_argument("--json", action="store_true", help="print the restore as JSON")

        faults = sub.add_parser(
            "faults",
            help="show a run's channel faults, or change them (only what you give changes)",
            description="Without settings or --clear: show the faults. Without --channel: change every channel.",
        )
        faults.add_argument("--run", required=True)
        faults.add_argument("--channel", help='the channel, "p1→p2" or "p1->p2" (default: every channel)')
        faults.add_argument("--delay-ms", type=int, help="extra delay of every frame (0 to 10000)")
        faults.add_argument(
            "--reorder",
            action=argparse.BooleanOptionalAction,
            help="non-FIFO: frames overtake each other (--no-reorder: FIFO again)",
        )
        faults.add_argument("--loss", type=float, help="chance that a transmission is lost, 0 to 0.9 (retransmitted)")
        faults.add_argument("--clear", action="store_true", help="make the channel (or every channel) plain")
        faults.add_argument("--json", action="store_true")

        watching = sub.add_parser("watch", help="watchpoints: a process snapshots itself when a condition comes true")
        wsub = watching.add_subparsers(dest="watch_action", required=True)
        add = wsub.add_parser("add", help="add a watchpoint; prints its id on the last line")
        add.add_argument("--run", required=True)
        add.add_argument(
            "--condition", required=True, help='e.g. "balance < 10" or "src == \'p1\' and msg.amount > 50"'
        )
        add.add_argument("--process", help="the process that watches (default: every process)")
        add.add_argument("--mode", choices=Watchpoint.Mode.values, default="once")
        add.add_argument("--cooldown", type=float, default=5.0, help="mode every: seconds between two snapshots")
        add.add_argument("--algorithm", choices=ALGORITHMS, default=CHANDY_LAMPORT)
        add.add_argument(
            "--wait",
            type=float,
            metavar="SECONDS",
            help="then wait up to this long for it to trigger a snapshot, and print that snapshot",
        )
        listing = wsub.add_parser("list", help="a run's watchpoints")
        listing.add_argument("--run", required=True)
        listing.add_argument("--json", action="store_true")
        remove = wsub.add_parser("remove", help="remove a watchpoint")
        remove.add_argument("--run", required=True)
        remove.add_argument("watchpoint", help="its id (see `run watch list`)")

    @service_errors
    def handle(self, *args: Any, **opts: Any) -> None:
        action = opts["action"] if opts["action"] != "watch" else f"watch_{opts['watch_action']}"
        getattr(self, f"do_{action}")(opts)

    def do_start(self, opts: dict[str, Any]) -> None:
        services.check_cluster()
        topology = services.get_topology(opts["topology"])
        run = services.start_run(topology, opts["workload"], opts["rate"], seed=opts["seed"])
        self.stdout.write(f"started run {run.pk}: {topology.name}, {run.workload}, {run.rate:g} steps/s per process")
        self.stdout.write(str(run.pk))

    def _set(self, opts: dict[str, Any], status: str) -> None:
        run = services.set_run_status(services.get_run(opts["run"]), status)
        self.stdout.write(f"run {run.pk} {run.status}")

    def do_stop(self, opts: dict[str, Any]) -> None:
        self._set(opts, "stopped")

    def do_pause(self, opts: dict[str, Any]) -> None:
        self._set(opts, "paused")

    def do_resume(self, opts: dict[str, Any]) -> None:
        self._set(opts, "running")

    def do_rate(self, opts: dict[str, Any]) -> None:
        run = services.set_run_rate(services.get_run(opts["run"]), opts["rate"])
        self.stdout.write(f"run {run.pk} rate {run.rate:g}")

    def do_status(self, opts: dict[str, Any]) -> None:
        status = services.run_status(services.get_run(opts["run"]))
        if opts["json"]:
            self.stdout.write(json.dumps(status, indent=2))
            return
        snaps = status.pop("snapshots")
        by_channel = status.pop("retransmissions_by_channel", {})
        faults = status.pop("faults", {})
        rows = {key.replace("_", " "): value for key, value in status.items()}
        if by_channel:
            shown = ", ".join(f"{channel} {n}" for channel, n in sorted(by_channel.items()))
            rows["retransmissions"] = f"{rows['retransmissions']} ({shown})"
        rows["faults"] = faults_line(faults)
        rows["snapshots"] = ", ".join(f"{n} {k}" for k, n in snaps.items())
        width = max(len(k) for k in rows)
        for key, value in rows.items():
            self.stdout.write(f"{key:<{width}}  {'n/a' if value is None else value}")

    def do_events(self, opts: dict[str, Any]) -> None:
        run = services.get_run(opts["run"])
        for event in services.store().events(run.pk, opts["limit"]):
            self.stdout.write(json.dumps(event))

    # -- restore ------------------------------------------------------------------------

    def do_restore(self, opts: dict[str, Any]) -> None:
        run = services.get_run(opts["run"])
        snapshot = _snapshot(opts["snapshot"])
        record = recovery.restore_run(run, snapshot)
        if opts["json"]:
            self.stdout.write(json.dumps(record.to_dict(), indent=2))
            return
        self.stdout.write(
            f"run {run.pk} restored from snapshot {snapshot.pk}: epoch {record.epoch},"
            f" {record.replayed_messages} recorded messages delivered again,"
            f" {record.dropped_frames} frames in flight dropped"
        )

    # -- faults -------------------------------------------------------------------------

    def do_faults(self, opts: dict[str, Any]) -> None:
        run = services.get_run(opts["run"])
        given = {key: opts[key] for key in ("delay_ms", "reorder", "loss") if opts[key] is not None}
        if opts["clear"] and given:
            raise CommandError("give either --clear or new settings (--delay-ms, --reorder, --loss), not both")
        channels = (
            [normal_channel_id(opts["channel"])]
            if opts["channel"]
            else [channel_id(s, d) for s, d in run.channel_pairs]
        )
        if opts["channel"] and not (given or opts["clear"]):
            raise CommandError(
                f"give {channels[0]} new settings (--delay-ms, --reorder/--no-reorder, --loss) or --clear"
            )
        if opts["clear"]:
            services.set_channel_faults(run, {channel: {} for channel in channels})
        elif given:
            # Only what is given changes: each channel keeps its other settings.
            services.set_channel_faults(
                run, {channel: {**run.faults.get(channel, {}), **given} for channel in channels}
            )
        if opts["json"]:
            self.stdout.write(json.dumps(run.faults, indent=2, ensure_ascii=False))
            return
        if not run.faults:
            self.stdout.write(f"run {run.pk}: every channel is plain (reliable, FIFO)")
            return
        self.stdout.write(f"{'channel':<16} faults")
        for name, faults in sorted(run.faults.items()):
            self.stdout.write(f"{name:<16} {fault_words(faults)}")

    # -- watchpoints --------------------------------------------------------------------

    def do_watch_add(self, opts: dict[str, Any]) -> None:
        run = services.get_run(opts["run"])
        if opts["wait"] is not None and opts["wait"] <= 0:
            raise CommandError("--wait needs a number of seconds above 0")
        watchpoint = watch.add_watchpoint(
            run,
            opts["condition"],
            process=opts["process"],
            mode=opts["mode"],
            cooldown_s=opts["cooldown"],
            algorithm=opts["algorithm"],
        )
        self.stdout.write(f"added {_describe(watchpoint)}")
        if opts["wait"] is not None:
            self._wait_for_trigger(watchpoint, opts["wait"])
        self.stdout.write(str(watchpoint.pk))

    def _wait_for_trigger(self, watchpoint: Watchpoint, seconds: float) -> None:
        # A watchpoint's hit announces nothing but the snapshot's row: look for it.
        deadline = time.monotonic() + seconds
        while (snapshot := watchpoint.snapshots.order_by("id").first()) is None:
            if time.monotonic() > deadline:
                raise CommandError(f"watchpoint {watchpoint.pk} did not trigger within {seconds:g} s")
            time.sleep(0.25)
        snapshot = services.wait_for_snapshot(snapshot.pk, SNAPSHOT_WAIT_EXTRA + max(0.0, deadline - time.monotonic()))
        self.stdout.write(
            f"snapshot {snapshot.pk} ({snapshot.algorithm}) triggered at {snapshot.initiator}: {snapshot.trigger}"
            f" — {presenter.terminal_outcome(snapshot)}"
        )

    def do_watch_list(self, opts: dict[str, Any]) -> None:
        run = services.get_run(opts["run"])
        watchpoints = list(run.watchpoints.order_by("id"))
        if opts["json"]:
            self.stdout.write(json.dumps([w.to_dict() for w in watchpoints], indent=2))
            return
        if not watchpoints:
            self.stdout.write(f"run {run.pk} has no watchpoints")
            return
        header = ("id", "process", "kind", "mode", "algorithm", "enabled", "hits")
        self.stdout.write("{:>5} {:<10} {:<5} {:<10} {:<14} {:<7} {:>4}  condition".format(*header))
        for w in watchpoints:
            mode = w.mode if w.mode == Watchpoint.Mode.ONCE else f"every {w.cooldown_s:g}s"
            self.stdout.write(
                f"{w.pk:>5} {w.process or 'any':<10} {w.kind:<5} {mode:<10} {w.algorithm:<14}"
                f" {'yes' if w.enabled else 'no':<7} {w.hits:>4}  {w.condition}"
            )

    def do_watch_remove(self, opts: dict[str, Any]) -> None:
        run = services.get_run(opts["run"])
        watchpoint = watch.get_watchpoint(run, opts["watchpoint"])
        watch.remove_watchpoint(watchpoint)
        self.stdout.write(f"removed watchpoint {opts['watchpoint']} of run {run.pk}")


def _snapshot(snapshot_id: str) -> Snapshot:
    try:
        return Snapshot.objects.get(pk=int(snapshot_id))
    except (Snapshot.DoesNotExist, ValueError):
        raise CommandError(f"no snapshot with id {snapshot_id!r}") from None


def _describe(w: Watchpoint) -> str:
    mode = "once" if w.mode == Watchpoint.Mode.ONCE else f"every time, at most every {w.cooldown_s:g} s"
    return (
        f"watchpoint {w.pk} on run {w.run_id} at {w.process or 'every process'}: {w.condition}"
        f" ({w.kind} condition, {mode}, {w.algorithm})"
    )
