"""``manage.py topology list | import FILE.json [--replace] | export NAME``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from cluster.core import safejson
from cluster.core.topology import TopologyError, shown_name
from snapshots import services
from snapshots.models import Topology

from ._cli import service_errors


class Command(BaseCommand):
    help = "List, import and export topologies (JSON)."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("list", help="list topologies")
        imp = sub.add_parser("import", help="import a topology from a JSON file ('-' for stdin)")
        imp.add_argument("file")
        imp.add_argument("--replace", action="store_true", help="replace a topology of the same name")
        exp = sub.add_parser("export", help="print a topology as JSON")
        exp.add_argument("name")

    @service_errors
    def handle(self, *args: Any, **opts: Any) -> None:
        getattr(self, f"do_{opts['action']}")(opts)

    def do_list(self, opts: dict[str, Any]) -> None:
        rows = Topology.objects.order_by("name")
        self.stdout.write(f"{'name':<24} {'workload':<12} {'processes':>9} {'channels':>8}")
        for t in rows:
            name = shown_name(t.name)  # a name stored before the rule, escaped
            self.stdout.write(f"{name:<24} {t.workload:<12} {t.processes.count():>9} {t.channels.count():>8}")

    def _read(self, path: str) -> str | bytes:
        """At most the limit a request body has, plus one byte to tell it was more:
        ``/dev/zero`` or a runaway pipe must not fill the memory."""
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if path == "-":
            raw: str | bytes = getattr(self.stdin, "buffer", self.stdin).read(limit + 1)
        else:
            with Path(path).open("rb") as file:
                raw = file.read(limit + 1)
        if len(raw) > limit:
            raise CommandError(f"{path} is larger than {limit} bytes: no topology is that large")
        return raw

    def do_import(self, opts: dict[str, Any]) -> None:
        path = opts["file"]
        try:
            data = safejson.loads(self._read(path))
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
        except safejson.JSONInputError as exc:
            raise CommandError(f"{path} is not valid JSON: {exc}") from None
        try:
            topology = services.import_topology(data, replace=opts["replace"])
        except TopologyError as exc:
            raise CommandError("invalid topology:\n  - " + "\n  - ".join(exc.problems)) from None
        self.stdout.write(
            f"imported {topology.name}: {topology.processes.count()} processes, {topology.channels.count()} channels"
        )

    def do_export(self, opts: dict[str, Any]) -> None:
        self.stdout.write(json.dumps(services.get_topology(opts["name"]).to_dict(), indent=2))
