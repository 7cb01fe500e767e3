"""Fixtures for the dashboard's tests: users with roles, WebSocket connections, a live
Daphne with real workers, and a real headless Chromium.

The workers are the integration tests' (``cluster_workers``, imported from there with
the hook that attaches their logs to a failing test's report). Daphne runs as
``make run`` runs it, in a child process pointed at this session's Redis and test
database; like the workers it only sees committed rows, so tests that use it use
``transactional_db`` too.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.devserver.children import Child, StartupError, free_port, port_open, wait_until
from tests.conftest import empty_own_redis
from tests.integration.conftest import (  # noqa: F401 - fixtures and hooks are found by name
    _test_database_env,
    cluster_workers,
    pytest_runtest_makereport,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = BASE_DIR / "tests" / "artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
PASSWORD = "correct horse battery staple"
DAPHNE_READY_TIMEOUT = 60.0


@pytest.fixture
def roles(transactional_db: None) -> None:
    """The viewer/operator/staff groups (a flushed test database has lost them)."""
    from django.apps import apps

    from snapshots.roles import sync_roles

    sync_roles(apps)


@pytest.fixture
def make_user(roles: None) -> Callable[..., Any]:
    """``make_user("olga", "operator")``: a user in those roles, password ``PASSWORD``."""
    from django.contrib.auth.models import Group, User

    def make(username: str, *role_names: str) -> User:
        user = User.objects.create_user(username, password=PASSWORD)
        user.groups.set(Group.objects.filter(name__in=role_names))
        return user

    return make


@pytest.fixture
def ring3(transactional_db: None) -> Any:
    from cluster.core import topology as topo
    from snapshots import services

    return services.import_topology(topo.ring(3, two_way=True, name="ring3"))


class LiveServer:
    """Daphne serving ``config.asgi:application`` as ``make run`` does, on a fixed free port."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.child: Child | None = None

    def start(self) -> None:
        argv = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port), "config.asgi:application"]
        self.child = Child.start("daphne", argv, env=self.env, cwd=BASE_DIR, log_path=self.log_path)
        try:
            wait_until(
                lambda: port_open("127.0.0.1", self.port),
                what="Daphne",
                timeout=DAPHNE_READY_TIMEOUT,
                children=[self.child],
            )
        except StartupError as exc:
            self.stop()
            pytest.fail(f"{exc}\n{self.log_path.read_text(errors='replace')}", pytrace=False)

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()
            self.child = None


@pytest.fixture
def daphne(transactional_db: None, tmp_path: Path) -> Iterator[LiveServer]:
    """A running Daphne on this session's Redis and test database."""
    server = LiveServer({**os.environ, **_test_database_env(), "PYTHONUNBUFFERED": "1"}, tmp_path / "daphne.log")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    """A real headless Chromium (Debian's), driven through chromedriver; nothing is downloaded."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"needs Debian's chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}): apt-get install them")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="cutline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1440,1720",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(autouse=True)
def empty_redis(own_redis: bool) -> Iterator[None]:
    """Each test starts with an empty store: no cursors or queues from another test's runs."""
    yield
    empty_own_redis()


@pytest.fixture
def artifacts() -> Path:
    """tests/artifacts/ (git-ignored): screenshots the browser tests leave behind."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
