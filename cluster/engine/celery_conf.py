"""How the engine's Celery app must be configured: order first, then speed.

Order matters here: every simulated process owns one FIFO queue, and a worker must not
hold more than one of its messages at a time, or a warm shutdown can put several back in
reverse order. Hence the solo pool, prefetch 1 and late acks (a message is acked only
after the process has persisted its effect). Per-channel sequence numbers make the
remaining hazards (redelivery after a crash, restores behind newer messages) harmless.
Worker events stay off: they halved throughput when measured.

``config/celery.py`` creates the app and applies this; the dev server's launcher reads
the same values to reach the workers over its own broker URL.
"""

from __future__ import annotations

from typing import Any

import kombu.connection
from celery import Celery

TASKS_MODULE = "cluster.engine.tasks"

# Redis: a message unacked for this long (its worker died) is delivered again, and
# the sweep that finds such messages runs every 2 s. A short timeout is safe here:
# a message redelivered while its first delivery is still running is a duplicate
# seq, which the receiving process drops. Without it, a SIGKILLed worker's message
# came back only after an hour, and its channel stalled behind the gap until then.
BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": 10,
    "unacked_restore_interval": 2,
    "unacked_restore_throttle": 1,
    "socket_timeout": 15,
    "socket_connect_timeout": 5,
    # Redis: one list per queue, not four. Priorities would break queue order, so
    # nothing here sets one; with kombu's default steps [0, 3, 6, 9] every BRPOP
    # named each queue four times (2000 keys for a worker serving 500 processes).
    "priority_steps": [0],
}

CELERY_CONF: dict[str, Any] = {
    "task_serializer": "json",
    "accept_content": ["json"],
    "result_backend": None,
    "task_ignore_result": True,
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
    "worker_send_task_events": False,
    "task_send_sent_event": False,
    "worker_hijack_root_logger": False,
    "broker_connection_retry_on_startup": True,
    "broker_transport_options": BROKER_TRANSPORT_OPTIONS,
    "task_default_queue": "cutline.default",
    "imports": (TASKS_MODULE,),
}

# kombu's Redis transport with the fixes in ``cluster/engine/broker.py``.
REDIS_TRANSPORT = "cluster.engine.broker:Transport"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")


# A connection names its transport in its URL (``as_uri``, ``info()``) by the transport's
# dotted path unless kombu knows an alias for it. Ours speaks plain Redis, and Flower
# picks its broker page by that URL's scheme (a 404 for anything but redis/amqp), so the
# URL keeps ``redis://``. Only the displayed name changes: connections and pools are
# built from the unresolved transport (``_info(resolve=False)``).
kombu.connection.resolve_aliases[REDIS_TRANSPORT] = "redis"


def configure(app: Celery) -> None:
    """Apply the engine's settings to ``app`` (its broker URL already set)."""
    app.conf.update(CELERY_CONF)
    if app.conf.broker_url.startswith(REDIS_SCHEMES):
        app.conf.broker_transport = REDIS_TRANSPORT
