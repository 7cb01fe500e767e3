"""``manage.py run start | stop | pause | resume | rate | status | events``."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from snapshots import services

from ._cli import service_errors


class Command(BaseCommand):
    help = "Start, steer and inspect runs of a topology on the cluster."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        start = sub.add_parser("start", help="start a run; prints its id on the last line")
        start.add_argument("--topology", required=True)
        start.add_argument("--workload", choices=["bank", "token"], help="default: the topology's")
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
        status = sub.add_parser("status", help="live counters of a run")
        status.add_argument("run")
        status.add_argument("--json", action="store_true")
        events = sub.add_parser("events", help="the run's logged events (with vector clocks), oldest first")
        events.add_argument("run")
        events.add_argument("--limit", type=int, default=100)

    @service_errors
    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, f"do_{opts['action']}")(opts)

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
        width = max(len(k) for k in status)
        for key, value in status.items():
            self.stdout.write(f"{key.replace('_', ' '):<{width}}  {value}")
        self.stdout.write(f"{'snapshots':<{width}}  " + ", ".join(f"{n} {k}" for k, n in snaps.items()))

    def do_events(self, opts: dict[str, Any]) -> None:
        run = services.get_run(opts["run"])
        for event in services.store().events(run.pk, opts["limit"]):
            self.stdout.write(json.dumps(event))
