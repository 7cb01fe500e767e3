"""The Celery app that runs the simulated processes.

Order matters here: every simulated process owns one FIFO queue, and a worker must not
hold more than one of its messages at a time, or a warm shutdown can put several back in
reverse order. Hence the solo pool, prefetch 1 and late acks (a message is acked only
after the process has persisted its effect). Per-channel sequence numbers make the
remaining hazards (redelivery after a crash, restores behind newer messages) harmless.
Worker events stay off: they halved throughput when measured.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cutline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.update(
    task_serializer="json",
    accept_content=["json"],
    result_backend=None,
    task_ignore_result=True,
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    worker_send_task_events=False,
    task_send_sent_event=False,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    # Redis: a message unacked for this long (its worker died) is delivered again, and
    # the sweep that finds such messages runs every 2 s. A short timeout is safe here:
    # a message redelivered while its first delivery is still running is a duplicate
    # seq, which the receiving process drops. Without it, a SIGKILLed worker's message
    # came back only after an hour, and its channel stalled behind the gap until then.
    broker_transport_options={
        "visibility_timeout": 10,
        "unacked_restore_interval": 2,
        "unacked_restore_throttle": 1,
        "socket_timeout": 15,
        "socket_connect_timeout": 5,
        # Redis: one list per queue, not four. Priorities would break queue order, so
        # nothing here sets one; with kombu's default steps [0, 3, 6, 9] every BRPOP
        # named each queue four times (2000 keys for a worker serving 500 processes).
        "priority_steps": [0],
    },
    task_default_queue="cutline.default",
)
if app.conf.broker_url.startswith(("redis://", "rediss://", "unix://")):
    app.conf.broker_transport = "cluster.broker:Transport"
app.autodiscover_tasks(["cluster"])


def _install_worker_steps() -> None:
    from cluster.worker import CutlineNode

    app.steps["consumer"].add(CutlineNode)


_install_worker_steps()
