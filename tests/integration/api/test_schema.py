"""The API's description of itself, and the API held to it.

Its root lists the endpoints; its OpenAPI schema is valid, complete, and the one
``manage.py spectacular`` writes; the interactive page loads nothing from the internet.

Then the API is fuzzed from that schema (schemathesis), in process over WSGI. Every
operation gets valid and invalid requests generated from the schema, signed in as a user
who holds every role, on a database with a topology, a run with a watchpoint and two
finished snapshots (to compare and to restore), and a worker heartbeat so runs and
snapshots can really start. Each answer must not be a 5xx, must match the schema (status
code, content type, body), invalid requests must be refused, and every operation must
refuse the same request without credentials or with bad ones (schemathesis's
``ignored_auth`` check).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.apps import apps
from django.contrib.staticfiles import finders
from django.core.handlers.wsgi import WSGIHandler
from django.core.management import call_command
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.test import APIClient
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks as openapi_checks

from snapshots import watchpoints as watch
from tests.integration.api.support import (
    live_cluster,
    make_finished_snapshot,
    make_run,
    make_topology,
    make_user,
    token_client,
)

pytestmark = pytest.mark.django_db


def test_the_api_root_lists_the_endpoints() -> None:
    links = APIClient().get("/api/").json()
    assert links["snapshots"].endswith("/api/snapshots/") and links["docs"].endswith("/api/docs/")


def test_the_openapi_schema_is_valid_and_complete(tmp_path: Any) -> None:
    out = tmp_path / "schema.yaml"
    call_command(
        "spectacular",
        "--validate",
        "--fail-on-warn",
        "--file",
        str(out),
    )
    schema = APIClient().get("/api/schema/?format=json").json()
    assert {"/api/topologies/", "/api/runs/{id}/snapshots/", "/api/snapshots/{id}/", "/api/runs/{id}/events/"} <= set(
        schema["paths"]
    )
    assert set(schema["components"]["securitySchemes"]) == {"tokenAuth", "cookieAuth"}


def test_the_schema_served_is_the_one_manage_py_spectacular_writes(tmp_path: Any) -> None:
    out = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(out))
    written = json.loads(out.read_text())
    served = APIClient().get("/api/schema/?format=json").json()
    assert written == served
    assert served["info"]["title"] == "Cutline API"
    assert not [name for name in served["components"]["schemas"] if re.fullmatch(r"Status[0-9a-f]+Enum", name)]


def test_the_interactive_api_page_loads_nothing_from_the_internet() -> None:
    # Needs config/settings.py: "drf_spectacular_sidecar" in INSTALLED_APPS and
    # SPECTACULAR_SETTINGS pointing Swagger UI at it ("SIDECAR").
    assert apps.is_installed("drf_spectacular_sidecar"), "the bundled Swagger UI assets are not installed"
    html = APIClient().get("/api/docs/").content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    assert not [s for s in sources if re.match(r"(https?:)?//", s)], sources
    for source in sources:
        if source.startswith("/static/"):
            assert finders.find(source.removeprefix("/static/")), f"{source} is not among the static files"


# --- fuzzed from the schema ---------------------------------------------------------------

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
