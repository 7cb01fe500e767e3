"""``make run``: the whole Cutline system in one terminal, and its parts for the tests.

Theory of operation. ``serve()`` starts, in order: the bundled Redis (unless
``REDIS_URL`` is set), migrations, the demo topologies, the first superuser, N Celery
workers (worker i consumes ``cutline.shard.<i>`` and serves shard i of N) and Daphne.
It writes ``var/runtime.env`` so every later command in any shell (the CLI, another
worker) finds the same Redis and shard count, waits until every worker answers a
control ping and Daphne accepts connections, prints the URL, and then only waits.

Whatever ends the wait (Ctrl-C, SIGTERM, a child that died) leads to one shutdown path:
Daphne first (no new requests), then the workers (a warm shutdown lets each finish the
message it holds), Redis last (everyone else still needs it while stopping), then
``var/runtime.env`` goes, so no later command talks to a system that is gone. Process
handling itself (groups, SIGTERM-then-SIGKILL, dying with the parent) is in
``cluster/devserver/children.py``, shared with the integration fixtures.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import FrameType

from celery import Celery
from celery.utils.nodenames import host_format
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands

from cluster.devserver import redis_server
from cluster.devserver.children import Child, StartupError, port_open, stop_all, wait_until
from cluster.engine import celery_conf

BASE_DIR = Path(__file__).resolve().parents[2]  # the repository: cluster/devserver/launcher.py
WORKER_READY_TIMEOUT = 90.0
DAPHNE_READY_TIMEOUT = 60.0
# What every later command needs to reach the same system: the stores, the database
# (without DATABASE_URL the CLI would open an empty SQLite file and fail) and the
# settings the CLI's answers depend on. config/settings.py reads them back.
RUNTIME_ENV_KEYS = (
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DATABASE_URL",
    "CUTLINE_SQLITE_PATH",
    "CUTLINE_SHARDS",
    "CUTLINE_SNAPSHOT_TIMEOUT",
    "CUTLINE_EVENT_LOG_LIMIT",
)


# --- workers: shared with tests/integration/conftest.py --------------------------------


def worker_queue(shard: int) -> str:
    return f"cutline.shard.{shard}"


def worker_nodename(shard: int) -> str:
    """The node name worker ``shard`` answers to (``%h`` expanded as Celery does)."""
    return str(host_format(f"shard{shard}@%h"))


def worker_argv(shard: int) -> list[str]:
    # Solo pool, concurrency 1, prefetch 1: a worker holds one message of one FIFO queue
    # at a time (cluster/engine/celery_conf.py says why). Gossip, mingle and heartbeats only add
    # broker traffic that nothing here reads.
    return [
        sys.executable, "-m", "celery", "-A", "config", "worker",
        "-P", "solo", "-c", "1", "--prefetch-multiplier", "1",
        "-Q", worker_queue(shard), "-n", f"shard{shard}@%h",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
        "-l", "warning",
    ]  # fmt: skip


def worker_env(base: Mapping[str, str], shard: int, shards: int) -> dict[str, str]:
    return {**base, "CUTLINE_SHARD": str(shard), "CUTLINE_SHARDS": str(shards), "PYTHONUNBUFFERED": "1"}


def start_workers(shards: int, env: Mapping[str, str], log_dir: Path | None = None) -> list[Child]:
    """Start one worker per shard; with ``log_dir`` each logs to ``shard<i>.log`` there."""
    workers: list[Child] = []
    try:
        for shard in range(shards):
            log_path = log_dir / f"shard{shard}.log" if log_dir is not None else None
            workers.append(
                Child.start(
                    f"worker shard{shard}",
                    worker_argv(shard),
                    env=worker_env(env, shard, shards),
                    cwd=BASE_DIR,
                    log_path=log_path,
                )
            )
    except BaseException:
        stop_all(workers)
        raise
    return workers


def wait_for_workers(workers: Sequence[Child], broker_url: str, timeout: float = WORKER_READY_TIMEOUT) -> None:
    """Return once every worker has answered a control ping over ``broker_url``.

    A reply means the worker's consumer runs: it is connected and consuming its queue.
    The ping goes through a throwaway app bound to ``broker_url``: the project's app
    may name another broker (the launcher read its settings before it started Redis),
    and Celery publishes control messages through the app's own producer pool even when
    handed a connection, so only a separate app reaches the right broker.
    """
    probe = Celery("cutline-probe", broker=broker_url, set_as_current=False)
    probe.conf.update(
        broker_transport_options=celery_conf.BROKER_TRANSPORT_OPTIONS,
        broker_connection_retry_on_startup=True,
    )
    expected = {worker_nodename(shard) for shard in range(len(workers))}
    answered: set[str] = set()

    def all_answered() -> bool:
        pending = sorted(expected - answered)
        for reply in probe.control.ping(destination=pending, timeout=0.5):
            answered.update(reply)
        return answered >= expected

    try:
        wait_until(all_answered, what="the workers to answer a ping", timeout=timeout, children=workers)
    finally:
        probe.close()


# --- the launcher ----------------------------------------------------------------------


class _Stop(Exception):
    """Raised from a signal handler to leave whatever the launcher is waiting on."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, only someone else's
        pass
    return True


def _say(text: str = "") -> None:
    print(text, flush=True)


class Launcher:
    def __init__(self, *, workers: int, host: str, port: int) -> None:
        self.workers = workers
        self.host = host
        self.port = port
        self.var_dir = Path(settings.VAR_DIR)
        self.runtime_env: Path = Path(settings.RUNTIME_ENV)
        self.redis: redis_server.RedisServer | None = None
        self.worker_children: list[Child] = []
        self.daphne: Child | None = None
        self.wrote_runtime_env = False

    # The URL to show and to probe: a wildcard bind is reached through loopback.
    @property
    def probe_host(self) -> str:
        return {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)

    @property
    def url(self) -> str:
        host = f"[{self.probe_host}]" if ":" in self.probe_host else self.probe_host
        return f"http://{host}:{self.port}/"

    def run(self) -> int:
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            self._start()
            self._announce()
            return self._supervise()
        except _Stop as stop:
            _say(f"\n{stop}: stopping Cutline…")
            return 0
        except StartupError as exc:
            _say(f"Cutline could not start: {exc}")
            return 1
        finally:
            # A second Ctrl-C must not cut the shutdown short: it is bounded anyway.
            for sig in previous:
                signal.signal(sig, signal.SIG_IGN)
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # --- startup -----------------------------------------------------------------------

    def _start(self) -> None:
        self._claim_runtime_env()
        if self.port_taken():
            raise StartupError(
                f"port {self.port} on {self.probe_host} is taken: choose another (--port, or PORT=… with make run)"
            )
        env = dict(os.environ)
        if "REDIS_URL" in env:
            redis_url = env["REDIS_URL"]
            _say(f"Using the Redis at {redis_url} (REDIS_URL).")
        else:
            self.redis = redis_server.start(self.var_dir / "redis")
            redis_url = self.redis.url
            _say(f"Started the bundled Redis at {redis_url}.")
        env["REDIS_URL"] = redis_url
        env["CUTLINE_SHARDS"] = str(self.workers)
        broker_url = env.get("CELERY_BROKER_URL", redis_url)
        self._write_runtime_env(env)

        self._prepare(env)

        _say(f"Starting {self.workers} worker{'s' if self.workers != 1 else ''} and Daphne…")
        self.worker_children = start_workers(self.workers, env)
        self.daphne = Child.start(
            "daphne",
            [sys.executable, "-m", "daphne", "-b", self.host, "-p", str(self.port), "config.asgi:application"],
            env=env,
            cwd=BASE_DIR,
        )
        watched = [*self.worker_children, self.daphne, *self._redis_children()]
        wait_until(
            lambda: port_open(self.probe_host, self.port),
            what=f"Daphne to listen on {self.url}",
            timeout=DAPHNE_READY_TIMEOUT,
            children=watched,
        )
        wait_for_workers(self.worker_children, broker_url)

    def port_taken(self) -> bool:
        return port_open(self.probe_host, self.port)

    def _redis_children(self) -> list[Child]:
        return [self.redis.child] if self.redis is not None else []

    def _claim_runtime_env(self) -> None:
        """Refuse to start beside a running launcher; a file left by a dead one is stale."""
        if not self.runtime_env.exists():
            return
        for line in self.runtime_env.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "CUTLINE_SERVE_PID" and value.strip().isdigit():
                pid = int(value)
                if pid != os.getpid() and _pid_alive(pid):
                    raise StartupError(f"Cutline is already running (pid {pid}, see {self.runtime_env})")

    def _write_runtime_env(self, env: Mapping[str, str]) -> None:
        lines = [f"{key}={env[key]}" for key in RUNTIME_ENV_KEYS if env.get(key)]
        lines.append(f"CUTLINE_SERVE_PID={os.getpid()}")
        self.var_dir.mkdir(parents=True, exist_ok=True)
        # The URLs may carry passwords: the file is the owner's alone from its creation.
        self.runtime_env.unlink(missing_ok=True)
        fd = os.open(self.runtime_env, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(
                "# Written by `manage.py serve` (make run) for the commands started while it runs.\n"
                + "\n".join(lines)
                + "\n"
            )
        self.wrote_runtime_env = True

    def _prepare(self, env: Mapping[str, str]) -> None:
        """The database (migrations, demo topologies, first superuser) and the static files."""
        _say("Applying migrations…")
        call_command("migrate", interactive=False, verbosity=0)
        # loaddemo runs in its own process, with the environment the workers get: this
        # process read its settings before the bundled Redis existed.
        if "loaddemo" in get_commands():
            done = subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), "loaddemo"], env=env, cwd=BASE_DIR)
            if done.returncode != 0:
                raise StartupError(f"`manage.py loaddemo` failed (exit code {done.returncode}, output above)")
        else:
            _say("warning: no loaddemo command yet, so no demo topologies were loaded")
        self._first_superuser()
        # WhiteNoise serves STATIC_ROOT with each file's gzip beside it (config/settings.py).
        _say("Collecting static files…")
        call_command("collectstatic", interactive=False, verbosity=0)

    def _first_superuser(self) -> None:
        users = get_user_model()
        if users.objects.filter(is_superuser=True).exists():
            return
        if users.objects.filter(username="admin").exists():
            _say("warning: no superuser exists but a user 'admin' does; create one with `manage.py createsuperuser`")
            return
        password = secrets.token_urlsafe(12)
        users.objects.create_superuser("admin", password=password)
        _say("")
        _say("  ┌─ First run: a superuser was created for you ─────────────")
        _say("  │  username: admin")
        _say(f"  │  password: {password}")
        _say("  └─ This password is shown only this once. Keep it now. ────")
        _say("")

    def _announce(self) -> None:
        _say("")
        _say(f"Cutline is running at {self.url}  (admin: {self.url}admin/)")
        _say(f"{self.workers} worker{'s' if self.workers != 1 else ''} ready; Ctrl-C stops everything.")
        _say("")

    # --- running ---------------------------------------------------------------------

    def _supervise(self) -> int:
        """Block until a child exits (that is a failure: nothing should) or a signal."""
        children = {c.pid: c for c in [*self.worker_children, *self._redis_children()]}
        if self.daphne is not None:
            children[self.daphne.pid] = self.daphne
        while True:
            pid, status = os.wait()
            child = children.get(pid)
            if child is None:
                continue
            # os.wait reaped it, so Popen could no longer learn its status itself.
            child.popen.returncode = os.waitstatus_to_exitcode(status)
            _say(f"\n{child.describe_exit()} unexpectedly: stopping Cutline.")
            return 1

    # --- shutdown --------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self.daphne is not None:
            stop_all([self.daphne])
        stop_all(self.worker_children)
        if self.wrote_runtime_env:
            self.runtime_env.unlink(missing_ok=True)
        if self.redis is not None:
            self.redis.stop()
        if self.daphne is not None or self.worker_children:
            _say("Cutline stopped.")


def serve(*, workers: int, host: str, port: int) -> int:
    """Run Cutline until interrupted; the exit status (0: stopped on request)."""
    return Launcher(workers=workers, host=host, port=port).run()
