"""What any endpoint answers to a request it cannot serve: JSON 404s for unknown ids and
paths, a 400 for malformed JSON, a 415 for a form body.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    [
        "/api/runs/99/",
        "/api/snapshots/99/",
        "/api/topologies/99/",
        "/api/runs/99/events/",
        "/api/nothing/",
        "/api/runs/123456789012345678901234567890/",
    ],
)
def test_unknown_ids_and_paths_are_json_404s(viewer: APIClient, path: str) -> None:
    response = viewer.get(path)
    assert response.status_code == 404 and "detail" in response.json()


def test_malformed_json_is_a_400(staff: APIClient) -> None:
    response = staff.generic("POST", "/api/topologies/", "{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON parse error" in response.json()["detail"]


def test_a_form_body_is_a_415(staff: APIClient) -> None:
    response = staff.post("/api/topologies/", {"name": "x"})
    assert response.status_code == 415 and "Unsupported media type" in response.json()["detail"]
