"""Shared plumbing of the CLI commands: turn service errors into a message and exit 1."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError

from snapshots.services import ServiceError


def service_errors(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except ServiceError as exc:
            raise CommandError(str(exc)) from None

    return wrapped
