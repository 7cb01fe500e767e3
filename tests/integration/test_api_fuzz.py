"""Fuzzing the API from its own OpenAPI schema (schemathesis), in process over WSGI.

Every operation gets valid and invalid requests generated from the schema, signed in
as a user who holds every role, on a database with a topology, a run with a watchpoint
and two finished snapshots (to compare and to restore), and a worker heartbeat so runs
and snapshots can really start. Each answer
must not be a 5xx, must match the schema (status code, content type, body), invalid
requests must be refused, and every operation must refuse the same request without
credentials or with bad ones (schemathesis's ``ignored_auth`` check).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from snapshots import watchpoints as watch
from tests.integration.test_api_support import (
    live_cluster,
    make_finished_snapshot,
    make_run,
    make_topology,
    make_user,
    token_client,
)

CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
    openapi_checks.negative_data_rejection,
    openapi_checks.ignored_auth,
]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture
def world(db: None, redis_url: str) -> Iterator[None]:
    # The app runs in this thread on the test's own database connection, which Django
    # would otherwise close at the end of every request (its test client does the same).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        with live_cluster():
            run = make_run(make_topology("ring3"))
            make_finished_snapshot(run)
            make_finished_snapshot(run, in_flight=2)
            watch.add_watchpoint(run, "balance < 10")
            yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


@pytest.fixture
def credentials(db: None) -> dict[str, str]:
    user = make_user("staff", "fuzzer")  # staff holds every role
    return {"Authorization": token_client(user)._credentials["HTTP_AUTHORIZATION"]}


schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
schema.config.generation.update(
    max_examples=EXAMPLES_PER_OPERATION, modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], deterministic=True
)


# The world is shared by every generated request on purpose: they pile up on one database.
@schema.parametrize()
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_api_answers_every_generated_request_as_its_schema_says(
    case: Any, world: None, credentials: dict[str, str]
) -> None:
    case.call_and_validate(headers=credentials, checks=CHECKS)
