"""What an operator's tools ask of a running Cutline: is it ready, and how is it doing.

``readiness()`` answers a load balancer: the database (with Cutline's tables), Redis, the
broker, and a live worker for every process of every active run. ``MetricsCollector``
turns the database's rows and the store's counters into Prometheus metrics at scrape
time, so nothing is counted twice and every Daphne host reports the same numbers.
The metrics follow Flink's checkpoint metrics: snapshots by status (completed, failed,
in progress), their duration, and, per active run, the counters the run's processes
keep (markers, messages in flight, duplicates, retransmissions) and its restores.
The HTTP views (and who may read them) are in ``snapshots/web/health.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

from celery import current_app
from django.db import connection
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from cluster.core.wire import ALGORITHMS
from cluster.engine.node import in_shard
from snapshots import services
from snapshots.models import Restore, Run, Snapshot

log = logging.getLogger("cutline.operations")

# Upper bounds (seconds) of the snapshot duration histogram's buckets: from a small run's
# tenth of a second up to the default snapshot timeout.
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
Check = dict[str, Any]


# --- readiness --------------------------------------------------------------------------


def readiness() -> tuple[bool, dict[str, Check]]:
    """Every check's result (``ok`` and what it found) and whether all of them passed."""
    checks = {name: _run_check(name, check) for name, check in _CHECKS.items()}
    return all(c["ok"] for c in checks.values()), checks


def _run_check(name: str, check: Callable[[], Check]) -> Check:
    try:
        return check()
    except Exception as exc:
        # The endpoint is public: say which kind of failure, keep the details (URLs,
        # host names) in the log.
        log.warning("readiness check %s failed: %s", name, exc)
        return {"ok": False, "error": exc.__class__.__name__}


def _database() -> Check:
    # A query on a table of Cutline's: a database without the migrations is not ready.
    Run.objects.exists()
    return {"ok": True, "vendor": connection.vendor}


def _redis() -> Check:
    services.store().ping()
    return {"ok": True}


def _broker() -> Check:
    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=5)
        return {"ok": True, "transport": conn.info()["transport"]}


def _workers() -> Check:
    """A live worker for every process of every active run (paused ones included).

    Process ``i`` belongs to shard ``i mod N``; N is what the live workers say (each
    reports "i/N"), as ``services.check_cluster`` reads it.
    """
    store = services.store()
    live = store.live_workers(time.time())
    counts = {int(key.partition("/")[2]) for key in live}
    if len(counts) > 1:
        return {"ok": False, "live": sorted(live), "error": "the workers disagree on the number of shards"}
    shards = counts.pop() if counts else 1
    served = {int(key.partition("/")[0]) for key in live}
    # The database says which runs are active (it is the source of truth: the store may
    # still hold a run whose row is gone); a run's spec lists its processes in shard order.
    runs = list(Run.objects.filter(status__in=[Run.Status.RUNNING, Run.Status.PAUSED]).order_by("pk"))
    unserved: dict[str, list[str]] = {}
    for run in runs:
        names = [name for i, name in enumerate(run.process_names) if not any(in_shard(i, s, shards) for s in served)]
        if names:
            unserved[str(run.pk)] = names
    return {"ok": not unserved, "live": sorted(live), "active_runs": len(runs), "unserved": unserved}


_CHECKS: dict[str, Callable[[], Check]] = {
    "database": _database,
    "redis": _redis,
    "broker": _broker,
    "workers": _workers,
}


# --- metrics ----------------------------------------------------------------------------


class MetricsCollector(Collector):
    """Cutline's metrics, read fresh at every scrape (register it with a registry)."""

    def collect(self) -> Iterator[Metric]:
        yield from _snapshot_metrics()
        yield from _run_metrics()
        yield from _store_metrics()


def _snapshot_metrics() -> Iterator[Metric]:
    counts = GaugeMetricFamily(
        "cutline_snapshots", "Snapshots by status and algorithm.", labels=["status", "algorithm"]
    )
    found = {
        (row["status"], row["algorithm"]): row["n"]
        for row in Snapshot.objects.values("status", "algorithm").annotate(n=Count("pk"))
    }
    for status in Snapshot.Status.values:
        for algorithm in ALGORITHMS:
            counts.add_metric([status, algorithm], found.get((status, algorithm), 0))
    yield counts

    durations = HistogramMetricFamily(
        "cutline_snapshot_duration_seconds",
        "Time from a snapshot's start to its verdict, complete snapshots only.",
        labels=["algorithm"],
    )
    duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {
        f"le{i}": Count("pk", filter=Q(duration__lte=timedelta(seconds=b))) for i, b in enumerate(DURATION_BUCKETS)
    }
    rows = (
        Snapshot.objects.filter(status=Snapshot.Status.COMPLETE, finished_at__isnull=False)
        .annotate(duration=duration)
        .values("algorithm")
        .annotate(n=Count("pk"), total=Sum("duration"), **buckets)
    )
    for row in rows:
        cumulative = [(str(b), row[f"le{i}"]) for i, b in enumerate(DURATION_BUCKETS)]
        total: timedelta = row["total"] or timedelta()
        durations.add_metric([row["algorithm"]], [*cumulative, ("+Inf", row["n"])], total.total_seconds())
    yield durations

    restores = CounterMetricFamily("cutline_restores", "Runs put back into a snapshot's state.")
    restores.add_metric([], Restore.objects.count())
    yield restores


def _run_metrics() -> Iterator[Metric]:
    runs = GaugeMetricFamily("cutline_runs", "Runs by status.", labels=["status"])
    found = dict(Run.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    for status in Run.Status.values:
        runs.add_metric([status], found.get(status, 0))
    yield runs

    labels = ["run", "topology"]
    family: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
        "markers_sent": CounterMetricFamily("cutline_run_markers_sent", "Markers sent.", labels=labels),
        "markers_received": CounterMetricFamily("cutline_run_markers_received", "Markers received.", labels=labels),
        "messages_sent": CounterMetricFamily("cutline_run_messages_sent", "Messages sent.", labels=labels),
        "messages_in_flight": GaugeMetricFamily(
            "cutline_run_messages_in_flight", "Frames sent and not yet applied.", labels=labels
        ),
        "duplicates": CounterMetricFamily(
            "cutline_run_duplicates", "Frames dropped by their receiver as duplicates.", labels=labels
        ),
        "retransmissions": CounterMetricFamily(
            "cutline_run_retransmissions", "Frames resent on lossy channels.", labels=labels
        ),
    }
    restores = CounterMetricFamily("cutline_run_restores", "Restores of the run.", labels=labels)
    last = GaugeMetricFamily(
        "cutline_run_last_snapshot_duration_seconds",
        "Duration of the run's latest complete snapshot.",
        labels=labels,
    )
    active = (
        Run.objects.exclude(status=Run.Status.STOPPED)
        .select_related("topology")
        .annotate(
            restore_count=Count("restores", distinct=True),
            last_finished=Max("snapshots__finished_at", filter=Q(snapshots__status=Snapshot.Status.COMPLETE)),
        )
    )
    try:
        for run in active:
            values = [str(run.pk), run.topology.name]
            status = services.run_status(run)
            for key, metric in family.items():
                metric.add_metric(values, status[key])
            restores.add_metric(values, run.restore_count)
            if run.last_finished is not None:
                latest = run.snapshots.filter(finished_at=run.last_finished).first()
                if latest is not None:
                    last.add_metric(values, (latest.finished_at - latest.started_at).total_seconds())
    except Exception as exc:
        # Redis away: the database's metrics still go out, and cutline_redis_up says why
        # these are missing.
        log.warning("run metrics unavailable: %s", exc)
        return
    yield from family.values()
    yield restores
    yield last


def _store_metrics() -> Iterator[Metric]:
    up = GaugeMetricFamily("cutline_redis_up", "1 when the state store (Redis) answered this scrape.")
    try:
        store = services.store()
        live = store.live_workers(time.time())
        pending = store.pending_records()
    except Exception as exc:
        log.warning("store metrics unavailable: %s", exc)
        up.add_metric([], 0)
        yield up
        return
    up.add_metric([], 1)
    yield up
    workers = GaugeMetricFamily("cutline_workers_live", "Workers that reported in the last few seconds.")
    workers.add_metric([], len(live))
    yield workers
    shards = GaugeMetricFamily("cutline_worker_up", "1 for each shard (i/N) with a live worker.", labels=["shard"])
    for shard in sorted(live):
        shards.add_metric([shard], 1)
    yield shards
    records = GaugeMetricFamily("cutline_records_pending", "Snapshot records on their way to the database.")
    records.add_metric([], pending)
    yield records
