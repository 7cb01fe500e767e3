"""``manage.py serve``: what ``make run`` runs (see cluster/devserver/launcher.py)."""

from __future__ import annotations

import sys
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from cluster.devserver import launcher


class Command(BaseCommand):
    help = "Start Cutline: bundled Redis, Celery workers and Daphne; Ctrl-C stops them all."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--workers", type=int, default=2, help="worker processes, one per shard (default 2)")
        parser.add_argument("--port", type=int, default=8000, help="HTTP port (default 8000)")
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        sys.exit(launcher.serve(workers=opts["workers"], host=opts["host"], port=opts["port"]))
