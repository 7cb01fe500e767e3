"""``manage.py loaddemo``: the ready-made topologies (skips those already there)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from snapshots import services
from snapshots.demo import demo_topologies
from snapshots.models import Topology


class Command(BaseCommand):
    help = "Load the demo topologies (ring-5, complete-4, the paper's token pair, …)."

    def handle(self, *args: Any, **opts: Any) -> None:
        for data in demo_topologies():
            if Topology.objects.filter(name=data["name"]).exists():
                continue
            services.import_topology(data)
            self.stdout.write(f"loaded {data['name']}")
