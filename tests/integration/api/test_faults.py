"""Channel faults through the API: patched a channel at a time, in force in the run's
status and the workers' copy, and refused naming the channel and the setting.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from snapshots import services
from snapshots.models import Run


def test_faults_patched_through_the_api_are_in_force_and_in_the_run_status(live_run: Run, operator: APIClient) -> None:
    url = f"/api/runs/{live_run.pk}/faults/"
    assert operator.get(url).json() == {}
    changed = operator.patch(
        url, {"p1→p2": {"delay_ms": 100, "reorder": True}, "p2 -> p3": {"loss": 0.25}}, format="json"
    )
    assert changed.status_code == 200, changed.json()
    assert changed.json()["p1→p2"]["delay_ms"] == 100 and changed.json()["p1→p2"]["reorder"] is True
    assert changed.json()["p2→p3"]["loss"] == 0.25  # the ASCII arrow is read too

    detail = operator.get(f"/api/runs/{live_run.pk}/").json()
    assert detail["faults"] == detail["live"]["faults"] == changed.json()
    assert services.store().run_meta(live_run.pk)["faults"] == changed.json()  # the workers' copy

    plain = operator.patch(url, {"p1→p2": {}}, format="json")
    assert plain.status_code == 200 and "p1→p2" not in plain.json() and "p2→p3" in plain.json()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"p1→p2": {"delay_ms": -5}}, "delay_ms must be a whole number of milliseconds from 0 to 10000"),
        ({"p1→p2": {"delay_ms": 1.5}}, "delay_ms must be a whole number"),
        ({"p1→p2": {"loss": 0.95}}, "loss must be a fraction from 0 to 0.9"),
        ({"p1→p2": {"reorder": "yes"}}, "reorder must be true or false"),
        ({"p1→p2": {"jitter": 3}}, "unknown fault 'jitter'"),
        ({"p1→p2": 5}, "faults must be an object"),
        ({"p1→p9": {"loss": 0.1}}, "has no channel 'p1→p9'"),
        ({}, "give the faults by channel"),
        ([], "give the faults by channel"),
        ({"p1→p2": {}, "p1->p2": {"loss": 0.1}}, "channel p1→p2 is given twice"),
    ],
)
def test_bad_faults_are_refused_naming_the_channel_and_the_setting(
    live_run: Run, operator: APIClient, change: Any, words: str
) -> None:
    response = operator.patch(f"/api/runs/{live_run.pk}/faults/", change, format="json")
    assert response.status_code == 400
    assert words in response.json()["detail"], response.json()
    live_run.refresh_from_db()
    assert live_run.faults == {}
