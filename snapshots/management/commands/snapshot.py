"""``manage.py snapshot --run RUN [--initiator NAME] [--algorithm NAME] [--json]``: take one and print it;
``manage.py snapshot compare A B [--json]``: what changed between two snapshots of one run."""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cluster.core.wire import ALGORITHMS, CHANDY_LAMPORT, channel_id
from snapshots import presenter, services
from snapshots.models import Snapshot
from snapshots.presenter import snapshot_export

from ._cli import service_errors


class Command(BaseCommand):
    help = "Take a snapshot of a run (Chandy–Lamport or Lai–Yang), wait for it to finish, and print it."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--run", help="the run to snapshot")
        parser.add_argument("--initiator", help="the process that starts it (default: the first)")
        parser.add_argument(
            "--algorithm",
            choices=ALGORITHMS,
            default=CHANDY_LAMPORT,
            help="lai-yang also works on non-FIFO channels (default: chandy-lamport)",
        )
        parser.add_argument("--json", action="store_true", help="print the export shape as JSON")
        parser.add_argument("--timeout", type=float, help="seconds to wait (default: the snapshot timeout + 10)")
        sub = parser.add_subparsers(dest="action")
        compare = sub.add_parser("compare", help="what changed between two complete snapshots of one run")
        compare.add_argument("a", help="a snapshot id (usually the earlier)")
        compare.add_argument("b", help="a snapshot id (usually the later)")
        compare.add_argument("--json", action="store_true", dest="compare_json", help="print the comparison as JSON")

    @service_errors
    def handle(self, *args: Any, **opts: Any) -> None:
        if opts.get("action") == "compare":
            self.compare(opts)
        else:
            self.take(opts)

    def take(self, opts: dict[str, Any]) -> None:
        if not opts["run"]:
            raise CommandError("name the run to snapshot: --run RUN (or compare two snapshots: snapshot compare A B)")
        services.check_cluster()
        run = services.get_run(opts["run"])
        snapshot = services.start_snapshot(run, opts["initiator"], algorithm=opts["algorithm"])
        timeout = opts["timeout"] or settings.CUTLINE["SNAPSHOT_TIMEOUT"] + 10
        snapshot = services.wait_for_snapshot(snapshot.pk, timeout)
        if opts["json"]:
            self.stdout.write(json.dumps(snapshot_export(snapshot), indent=2))
        else:
            self.print_table(snapshot)
        if snapshot.status == Snapshot.Status.RUNNING:
            raise CommandError(f"snapshot {snapshot.pk} still running after {timeout:g} s")
        if snapshot.status == Snapshot.Status.FAILED:
            raise CommandError(f"snapshot {snapshot.pk} failed: {snapshot.reason}")
        if not snapshot.is_sound:
            raise CommandError(f"snapshot {snapshot.pk} is not a consistent global state")

    def print_table(self, snapshot: Snapshot) -> None:
        data = snapshot_export(snapshot)
        w = self.stdout.write
        w(f"snapshot {data['id']} of run {data['run']}, started at {data['initiator']}: {data['status']}")
        w(f"algorithm {data['algorithm']}, epoch {data['epoch']}")
        if data["watchpoint"]:
            w(f"triggered by watchpoint {data['watchpoint']}: {data['trigger']}")
        if snapshot.duration is not None:
            w(f"took {snapshot.duration * 1000:.0f} ms")
        if data["reason"]:
            w(f"reason: {data['reason']}")
        w("")
        w(f"{'process':<12} {'state':<20} {'sent':<24} {'received':<24}")
        for p in data["processes"]:
            received = _seqs(p["received"]) + "".join(
                f" +{src}:{','.join(map(str, seqs))}" for src, seqs in p.get("received_above", {}).items()
            )
            w(f"{p['process']:<12} {json.dumps(p['state']):<20} {_seqs(p['sent']):<24} {received:<24}")
        w("")
        w(f"{'channel':<16} recorded messages (seq: payload)")
        for c in data["channels"]:
            msgs = ", ".join(f"{m['seq']}: {json.dumps(m['payload'])}" for m in c["messages"]) or "empty"
            w(f"{channel_id(c['src'], c['dst']):<16} {msgs}")
        if data["verdict"]:
            w("")
            for line in presenter.terminal_verdict(data["verdict"]):
                w(line)
        if data["properties"]:
            w("")
            for line in presenter.terminal_properties(data["properties"]):
                w(line)

    def compare(self, opts: dict[str, Any]) -> None:
        a, b = _snapshot(opts["a"]), _snapshot(opts["b"])
        comparison = services.compare_snapshots(a, b)
        if opts["compare_json"] or opts["json"]:
            self.stdout.write(json.dumps(comparison, indent=2, ensure_ascii=False))
            return
        for line in comparison_lines(comparison):
            self.stdout.write(line)


def _snapshot(snapshot_id: str) -> Snapshot:
    try:
        return Snapshot.objects.get(pk=int(snapshot_id))
    except (Snapshot.DoesNotExist, ValueError):
        raise CommandError(f"no snapshot with id {snapshot_id!r}") from None


def comparison_lines(c: dict[str, Any]) -> list[str]:
    """``cluster/core/compare.py``'s answer in words, one line per change."""
    a, b = c["a"], c["b"]

    def side(s: dict[str, Any]) -> str:
        return f"snapshot {s['id']} ({s.get('algorithm')} from {s['initiator']}, epoch {s.get('epoch')})"

    lines = [f"a = {side(a)}", f"b = {side(b)}"]
    if c["first"]:
        lines.append(f"{c['first']} was started first")
    totals = c["totals"]
    lines += ["", f"processes: {totals['processes_changed']} changed, {totals['processes_same']} the same"]
    for p in c["processes"]:
        if p["only_in"]:
            lines.append(f"  {p['process']:<12} only in {p['only_in']}")
        elif not p["same"]:
            changes = ", ".join(f"{ch['key']} {_shown(ch['a'])} → {_shown(ch['b'])}" for ch in p["changes"])
            events = p["events"]
            lines.append(f"  {p['process']:<12} {changes}  (events {events['a']} → {events['b']})")
    lines += ["", f"channels: {totals['channels_changed']} changed"]
    for ch in c["channels"]:
        if ch["only_in"]:
            lines.append(f"  {ch['channel']:<16} only in {ch['only_in']}")
        elif not ch["same"]:
            parts = [
                f"only in {key[-1]}: " + ", ".join(f"{m['seq']}: {_shown(m['payload'])}" for m in ch[key])
                for key in ("only_a", "only_b")
                if ch[key]
            ]
            lines.append(f"  {ch['channel']:<16} " + "; ".join(parts) + f"; in both: {len(ch['both'])}")
    messages, recorded = totals["messages"], totals["recorded_total"]
    lines += [
        "",
        f"messages in flight: {messages['a']} in a, {messages['b']} in b ({messages['both']} in both)",
        f"recorded total: {_shown(recorded['a'])} in a, {_shown(recorded['b'])} in b",
    ]
    lines += [f"note: {note}" for note in c["notes"]]
    return lines


def _shown(value: Any) -> str:
    return "n/a" if value is None else json.dumps(value, ensure_ascii=False)


def _seqs(seqs: dict[str, int]) -> str:
    return " ".join(f"{k}:{v}" for k, v in seqs.items())
