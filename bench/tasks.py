"""Baseline Celery tasks the benchmark compares the cluster against.

They run in the same workers as the cluster (``bench/settings.py`` makes the workers
import this module) and publish the way ``cluster/engine/transport.py`` did before any
Cutline-specific shortcut: ``send_task`` through the app's producer pool, so the
baselines stay "plain Celery" whatever the cluster's own transport does.
"""

from __future__ import annotations

import functools
import time

import redis
from celery import current_app, shared_task
from django.conf import settings

RELAY = "bench.relay"
PING = "bench.ping"


@functools.cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def send(name: str, args: list[object], queue: str) -> None:
    with current_app.producer_or_acquire() as producer:
        current_app.send_task(name, args=args, queue=queue, producer=producer, argsrepr="", kwargsrepr="")


@shared_task(name=RELAY)
def relay(hops: int, queue: str, done_key: str) -> None:
    """One hop of a chain: publish the next hop to the same queue, or count the chain done."""
    if hops > 0:
        send(RELAY, [hops - 1, queue, done_key], queue)
    else:
        _redis().incr(done_key)


@shared_task(name=PING)
def ping(sent_at: float, key: str) -> None:
    """Report how long this task took from its publication to its execution here."""
    _redis().rpush(key, time.time() - sent_at)
