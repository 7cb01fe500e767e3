"""The Celery app that runs the simulated processes.

The engine says how the app must be configured (``cluster/engine/celery_conf.py``:
solo pool, prefetch 1, late acks, and why); ``config/worker.py`` says what a worker
runs beside its node.
"""

from __future__ import annotations

import os

from celery import Celery

from cluster.engine import celery_conf
from cluster.engine.worker import install
from config.worker import build_worker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cutline")
app.config_from_object("django.conf:settings", namespace="CELERY")
celery_conf.configure(app)
install(app, build_worker)
