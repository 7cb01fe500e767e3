"""Settings for the benchmark's workers and its own process: Cutline's, plus the
baseline tasks (``bench/tasks.py``), which the workers must register to run them."""

from __future__ import annotations

from config.settings import *  # noqa: F403

CELERY_IMPORTS = ["bench.tasks"]
