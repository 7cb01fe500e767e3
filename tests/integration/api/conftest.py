"""Clients signed in by role, and a run to act on, for the API tests.

Django is imported inside the fixtures: pytest loads this file before tests/conftest.py
has chosen the settings.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rest_framework.test import APIClient

    from snapshots.models import Run


@pytest.fixture
def staff(db: None) -> APIClient:
    from tests.integration.api.support import make_user, token_client

    return token_client(make_user("staff"))


@pytest.fixture
def operator(db: None) -> APIClient:
    from tests.integration.api.support import make_user, token_client

    return token_client(make_user("operator"))


@pytest.fixture
def viewer(db: None) -> APIClient:
    from tests.integration.api.support import make_user, token_client

    return token_client(make_user("viewer"))


@pytest.fixture
def cluster(redis_url: str) -> Iterator[None]:
    """A worker heartbeat, so runs and snapshots start; no worker runs them."""
    from tests.integration.api.support import live_cluster

    with live_cluster():
        yield


@pytest.fixture
def live_run(db: None, redis_url: str) -> Iterator[Run]:
    """A run started for real (its processes and meta in Redis), with no worker to run it."""
    from snapshots import services
    from tests.integration.api.support import live_cluster, make_topology

    with live_cluster():
        yield services.start_run(make_topology("ring3"), "bank", 1.0, seed=1)
