"""Shared plumbing of the CLI commands: turn service errors into a message and exit 1."""

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
