"""Cutline's benchmarks (``make bench``): throughput, latency and snapshot scale.

Not tests: they measure, print tables and write ``bench/RESULTS.md``. Every figure is
quoted beside a baseline measured in the same run (no-op Celery tasks, a raw Redis
hop), because the machines they run on are shared and noisy; ratios travel, absolute
numbers do not. See ``bench/__main__.py`` for what runs and how long it takes.
"""
