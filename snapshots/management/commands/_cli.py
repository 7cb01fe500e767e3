"""Shared plumbing of the CLI commands: turn service, Redis and database errors into a
message and exit 1, and say channel faults in words."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import CommandError
from django.db import DatabaseError, connection

from snapshots.services import ServiceError


def service_errors(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
            # The commands that skip check_cluster (status, stop …) meet a missing Redis here.
            raise CommandError(
                f"Cutline is not running: cannot reach Redis at {settings.REDIS_URL} ({exc.__class__.__name__})."
                " Start it with `make run`, or set REDIS_URL."
            ) from None
        except DatabaseError as exc:
            # Most often a database without Cutline's tables: the wrong one (DATABASE_URL
            # unset in this shell while `make run` uses PostgreSQL), or never migrated.
            where = f"{connection.vendor} database {connection.settings_dict['NAME']}"
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise CommandError(
                f"cannot use the {where}: {first_line}. Is DATABASE_URL set as it is for `make run`"
                " (var/runtime.env sets it while `make run` runs)? If it is, run `manage.py migrate`."
            ) from None

    return wrapped


def fault_words(faults: dict[str, Any]) -> str:
    """``delay 100 ms, non-FIFO, loss 0.2`` (``plain`` for a reliable FIFO channel)."""
    words = []
    if faults.get("delay_ms"):
        words.append(f"delay {faults['delay_ms']} ms")
    if faults.get("reorder"):
        words.append("non-FIFO")
    if faults.get("loss"):
        words.append(f"loss {faults['loss']:g}")
    return ", ".join(words) or "plain"


def faults_line(faults: dict[str, dict[str, Any]]) -> str:
    """Every faulty channel of a run on one line: ``p1→p2 delay 100 ms; p2→p1 loss 0.2``."""
    return "; ".join(f"{channel} {fault_words(f)}" for channel, f in sorted(faults.items())) or "none"
