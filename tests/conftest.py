"""The test session's own world: a private var/ directory and a private Redis.

Tests must never touch a developer's running system, so before Django's settings are
read (settings.py reads ``var/runtime.env``, which points at whatever ``make run``
started) this sets ``CUTLINE_VAR_DIR`` to a fresh temporary directory and, unless
``REDIS_URL`` is set, starts the bundled Redis and exports its URL. Only then does it
set ``DJANGO_SETTINGS_MODULE``, which is why that is not in pytest.ini: pytest-django
reads the ini before any conftest and would load the settings too early.

``CELERY_BROKER_URL`` (RabbitMQ, say) and ``DATABASE_URL`` (PostgreSQL) pass through.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from cluster.devserver import redis_server

_session: dict[str, object] = {}


def pytest_configure(config: pytest.Config) -> None:
    if config.option.help:
        return
    if "config.settings" in sys.modules:
        raise pytest.UsageError(
            "Django settings were loaded before tests/conftest.py could isolate them "
            "(is DJANGO_SETTINGS_MODULE exported in your shell?). Unset it: the tests set it themselves."
        )
    var_dir = Path(tempfile.mkdtemp(prefix="cutline-test-"))
    _session["var_dir"] = var_dir
    os.environ["CUTLINE_VAR_DIR"] = str(var_dir)
    if os.environ.get("REDIS_URL"):
        _session["own_redis"] = False
    else:
        server = redis_server.start(var_dir / "redis")
        _session["redis"] = server
        _session["own_redis"] = True
        os.environ["REDIS_URL"] = server.url
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"

    from django.conf import settings

    # Reading a setting loads them, so pytest-django (whose pytest_configure runs last)
    # finds them configured and sets Django up.
    assert var_dir == settings.VAR_DIR


def pytest_unconfigure(config: pytest.Config) -> None:
    server = _session.pop("redis", None)
    if isinstance(server, redis_server.RedisServer):
        server.stop()
    var_dir = _session.pop("var_dir", None)
    if isinstance(var_dir, Path):
        shutil.rmtree(var_dir, ignore_errors=True)


def pytest_report_header(config: pytest.Config) -> list[str]:
    # Schemes only: the URLs may carry passwords.
    redis_source = "bundled" if _session.get("own_redis") else "REDIS_URL"
    broker = os.environ.get("CELERY_BROKER_URL", "redis").partition(":")[0]
    database = os.environ.get("DATABASE_URL", "sqlite").partition(":")[0]
    return [f"cutline: redis {redis_source}, broker {broker}, database {database}, var {_session.get('var_dir')}"]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis of this test session (the bundled one unless REDIS_URL was set)."""
    return os.environ["REDIS_URL"]


@pytest.fixture(scope="session")
def own_redis() -> bool:
    """Whether the session started its Redis itself, so tests may empty it at will."""
    return bool(_session.get("own_redis"))


def empty_own_redis() -> None:
    """Empty the session's bundled Redis between tests (never a Redis given by REDIS_URL)."""
    if not _session.get("own_redis"):
        return
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    try:
        client.flushdb()
    finally:
        client.close()


@pytest.fixture(autouse=True)
def forget_api_throttles(request: pytest.FixtureRequest) -> None:
    """Every test starts with no API request counted against it.

    The REST API's throttle counts requests per user in Django's cache, which lives in
    the shared Redis (so every Daphne host counts together). User ids repeat from test to
    test, so without this a suite's later tests are refused as "too many requests".
    Only the cache's keys go: the runs' state in the same Redis stays.
    """
    if request.node.path.is_relative_to(Path(__file__).parent / "unit"):
        return  # the pure core has no API
    import redis
    from django.conf import settings

    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    client = redis.Redis.from_url(settings.CACHES["default"]["LOCATION"])
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
