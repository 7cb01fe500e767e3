"""Child processes that cannot outlive whoever started them.

``make run`` (cluster/devserver/launcher.py) and the integration fixtures start the same kinds of
children: a Redis server, Celery workers, Daphne. Both need the same guarantees, so they
live here once:

* Each child runs in a new session, hence its own process group. A Ctrl-C in the
  terminal then reaches only the launcher, which stops the children in order (Daphne,
  workers, Redis last) instead of all of them racing each other; and stopping a child
  signals its whole group, so a grandchild it forked cannot be left behind.
* On Linux each child asks the kernel for SIGTERM when its parent dies
  (``PR_SET_PDEATHSIG``), so even a launcher killed with SIGKILL orphans nothing.
* Stopping is SIGTERM, a bounded wait, then SIGKILL: a graceful exit when possible, a
  guaranteed one always.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

STOP_TIMEOUT = 10.0
_PR_SET_PDEATHSIG = 1


# Looked up once in the parent, so the child does as little as possible after fork.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with(parent: int) -> Callable[[], None] | None:
    """A preexec hook: deliver SIGTERM to the child when ``parent`` exits."""
    if _LIBC is None:
        return None
    libc = _LIBC

    def hook() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        # The parent may have died between fork and prctl; then nobody would signal us.
        if os.getppid() != parent:
            os._exit(1)

    return hook


@dataclass
class Child:
    """One started process, named for the messages people read."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path | None = None

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        log_path: Path | None = None,
    ) -> Child:
        """Start ``argv``; its output goes to ``log_path`` if given, else to ours."""
        log: IO[bytes] | None = None
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log = open(log_path, "ab")  # noqa: SIM115 - the child keeps it; we close our copy below
        try:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT if log is not None else None,
                start_new_session=True,
                preexec_fn=_die_with(os.getpid()),
            )
        finally:
            if log is not None:
                log.close()
        return cls(name, popen, log_path)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def alive(self) -> bool:
        return self.popen.poll() is None

    def signal_group(self, sig: int) -> None:
        """Signal the child's whole process group (it leads one: see module doc)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        stop_all([self], timeout)
        return self.popen.returncode

    def log_text(self, tail: int = 200) -> str:
        """The last ``tail`` lines of the child's log, for a failure report."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def describe_exit(self) -> str:
        code = self.popen.returncode
        if code is not None and code < 0:
            return f"{self.name} (pid {self.pid}) was killed by {signal.Signals(-code).name}"
        return f"{self.name} (pid {self.pid}) exited with code {code}"


def stop_all(children: Iterable[Child], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM every child at once, wait for all under one deadline, SIGKILL the rest.

    Signalling together and waiting once keeps shutdown at ``timeout`` in the worst case
    however many children there are. A child that already exited still gets its group
    signalled: a grandchild of it may be alive.
    """
    children = list(children)
    for child in children:
        child.signal_group(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.popen.wait(max(0.0, deadline - time.monotonic()))
    for child in children:
        child.signal_group(signal.SIGKILL)
        if child.popen.poll() is None:
            child.popen.wait()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now. Callers retry if someone takes it first."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


class StartupError(RuntimeError):
    """A child did not become ready; the message says which and why."""


def wait_until(
    ready: Callable[[], bool],
    *,
    what: str,
    timeout: float,
    children: Sequence[Child] = (),
    interval: float = 0.05,
) -> None:
    """Wait until ``ready()`` holds, failing at once if one of ``children`` exits.

    This polls a readiness probe (a PING, a port, a control reply) under a deadline:
    it waits for an event, it does not guess a duration.
    """
    deadline = time.monotonic() + timeout
    while True:
        for child in children:
            if not child.alive():
                raise StartupError(f"{child.describe_exit()} while waiting for {what}")
        if ready():
            return
        if time.monotonic() > deadline:
            raise StartupError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
