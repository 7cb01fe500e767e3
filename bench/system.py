"""The system under test: a bundled Redis, a temporary database and N real workers.

Started the way ``make run`` starts them (``cluster/devserver/redis_server.py``,
``cluster/devserver/launcher.py``), but in a temporary ``CUTLINE_VAR_DIR``, so a benchmark needs
nothing running and never touches a developer's system. This process then plays the
CLI: it sets Django up against the same database and Redis and calls the services.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cluster.devserver import redis_server
from cluster.devserver.children import Child, stop_all
from cluster.devserver.launcher import start_workers, wait_for_workers, worker_argv, worker_env, worker_nodename

SETTINGS = "bench.settings"
# The default: a 1000-process snapshot logs ~10 000 events, each with its vector clock.
EVENT_LOG_LIMIT = 20000


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Reading:
    """What the system had spent at one moment: worker CPU seconds, Redis requests."""

    cpu: float
    requests: int


@dataclass(frozen=True)
class Cost:
    """Per message, between two readings: worker CPU ms, and requests Redis processed
    (reads from client sockets: about one per round trip, pipelines counting once;
    everything the workers do meanwhile, heartbeats included, is in it)."""

    cpu_ms: float
    requests: float

    @classmethod
    def between(cls, a: Reading, b: Reading, messages: int, own_requests: int = 0) -> Cost:
        if messages <= 0:
            return cls(float("nan"), float("nan"))
        return cls((b.cpu - a.cpu) / messages * 1000, (b.requests - a.requests - own_requests) / messages)


class BenchSystem:
    def __init__(self, workers: int = 2, tree: Path | None = None) -> None:
        self.workers_n = workers
        self.tree = tree  # whose code the workers run: None for this checkout
        self.var_dir = Path(tempfile.mkdtemp(prefix="cutline-bench-"))
        self.redis: redis_server.RedisServer | None = None
        self.workers: list[Child] = []
        self.env: dict[str, str] = {}

    def __enter__(self) -> BenchSystem:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return self.redis.url

    def start(self) -> None:
        import django
        from django.core.management import call_command

        self.redis = redis_server.start(self.var_dir / "redis")
        own = {
            "CUTLINE_VAR_DIR": str(self.var_dir),
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": self.redis.url,
            "CUTLINE_SHARDS": str(self.workers_n),
            "CUTLINE_EVENT_LOG_LIMIT": str(EVENT_LOG_LIMIT),
            # Generous: a 1000-process snapshot under load must not be cut off.
            "CUTLINE_SNAPSHOT_TIMEOUT": "120",
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "LOG_LEVEL": "ERROR",
            "CUTLINE_LOG_LEVEL": "WARNING",
        }
        # Always the temporary SQLite, and this process reads the settings once, at
        # setup: they must point here before it.
        os.environ.pop("DATABASE_URL", None)
        os.environ.update(own)
        self.env = dict(os.environ)
        django.setup()
        call_command("migrate", interactive=False, verbosity=0)
        self.start_workers(self.tree)

    def start_workers(self, tree: Path | None = None) -> None:
        """Start the workers: this checkout's, or the code of another one (``bench/ab.py``)."""
        if tree is None:
            self.workers = start_workers(self.workers_n, self.env, log_dir=self.var_dir / "logs")
        else:
            # Another checkout has no bench/: its workers run Cutline's own settings.
            env = {**self.env, "PYTHONPATH": str(tree), "DJANGO_SETTINGS_MODULE": "config.settings"}
            self.workers = [
                Child.start(
                    f"worker shard{shard} ({tree})",
                    worker_argv(shard),
                    env=worker_env(env, shard, self.workers_n),
                    cwd=tree,
                    log_path=self.var_dir / "logs" / f"{tree.name}-shard{shard}.log",
                )
                for shard in range(self.workers_n)
            ]
        wait_for_workers(self.workers, self.redis_url)

    def restart_workers(self, tree: Path | None = None) -> None:
        stop_all(self.workers, timeout=30)
        self.start_workers(tree)

    def nodenames(self) -> list[str]:
        return [worker_nodename(i) for i in range(self.workers_n)]

    def worker_cpu(self) -> float:
        return sum(cpu_seconds(w.pid) for w in self.workers)

    def reading(self) -> Reading:
        stats = self.redis_client().info("stats")
        return Reading(self.worker_cpu(), int(stats["total_reads_processed"]))

    def redis_client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def check_alive(self) -> None:
        for worker in self.workers:
            if not worker.alive():
                raise RuntimeError(f"{worker.describe_exit()}:\n{worker.log_text(40)}")

    def stop(self) -> None:
        stop_all(self.workers, timeout=30)
        self.workers = []
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        shutil.rmtree(self.var_dir, ignore_errors=True)
