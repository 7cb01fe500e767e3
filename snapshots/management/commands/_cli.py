"""Shared plumbing of the CLI commands: turn service errors into a message and exit 1,
and say channel faults in words."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.core.management.base import CommandError

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
