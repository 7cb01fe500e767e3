"""``manage.py snapshot --run RUN [--initiator NAME] [--json]``: take one and print it."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from snapshots import services
from snapshots.models import Snapshot

from ._cli import service_errors


class Command(BaseCommand):
    help = "Take a Chandy–Lamport snapshot of a run, wait for it to finish, and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run", required=True)
        parser.add_argument("--initiator", help="the process that starts it (default: the first)")
        parser.add_argument("--json", action="store_true", help="print the export shape as JSON")
        parser.add_argument("--timeout", type=float, help="seconds to wait (default: the snapshot timeout + 10)")

    @service_errors
    def handle(self, *args: Any, **opts: Any) -> None:
        services.check_cluster()
        run = services.get_run(opts["run"])
        snapshot = services.start_snapshot(run, opts["initiator"])
        timeout = opts["timeout"] or settings.CUTLINE["SNAPSHOT_TIMEOUT"] + 10
        snapshot = services.wait_for_snapshot(snapshot.pk, timeout)
        if opts["json"]:
            self.stdout.write(json.dumps(snapshot.to_dict(), indent=2))
        else:
            self.print_table(snapshot)
        if snapshot.status == Snapshot.Status.RUNNING:
            raise CommandError(f"snapshot {snapshot.pk} still running after {timeout:g} s")
        if snapshot.status == Snapshot.Status.FAILED:
            raise CommandError(f"snapshot {snapshot.pk} failed: {snapshot.reason}")
        verdict = snapshot.verdict or {}
        if not (verdict.get("consistent") and verdict.get("conserved")):
            raise CommandError(f"snapshot {snapshot.pk} is not a consistent global state")

    def print_table(self, snapshot: Snapshot) -> None:
        data = snapshot.to_dict()
        w = self.stdout.write
        w(f"snapshot {data['id']} of run {data['run']}, started at {data['initiator']}: {data['status']}")
        if snapshot.duration is not None:
            w(f"took {snapshot.duration * 1000:.0f} ms")
        if data["reason"]:
            w(f"reason: {data['reason']}")
        w("")
        w(f"{'process':<12} {'state':<20} {'sent':<24} {'received':<24}")
        for p in data["processes"]:
            w(f"{p['process']:<12} {json.dumps(p['state']):<20} {_seqs(p['sent']):<24} {_seqs(p['received']):<24}")
        w("")
        w(f"{'channel':<16} recorded messages (seq: payload)")
        for c in data["channels"]:
            msgs = ", ".join(f"{m['seq']}: {json.dumps(m['payload'])}" for m in c["messages"]) or "empty"
            w(f"{c['src'] + '→' + c['dst']:<16} {msgs}")
        v = data["verdict"]
        if v:
            w("")
            w(
                f"verdict: {'consistent' if v['consistent'] else 'INCONSISTENT'} · "
                f"{v['recorded_total']} of {v['expected_total']} {'conserved' if v['conserved'] else 'NOT conserved'}"
                f" · {len(v['problems'])} problems"
            )
            for problem in v["problems"]:
                w(f"  - {problem}")


def _seqs(seqs: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in seqs.items())
