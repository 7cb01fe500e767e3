"""What a hostile user tried in the admin, each refused in words: a topology file too
large, too deep or not UTF-8, and a name stored before names were checked that could
have shaped the export's headers.
"""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from snapshots.models import Topology
from tests.integration.api.support import DEEP, make_topology, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_browser() -> Client:
    client = Client()
    client.force_login(make_user("staff"))
    return client


OLD_NAME = 'evil"\r\nSet-Cookie: x=1;\u202egnp'  # stored before names were checked


def test_a_name_stored_before_the_rule_exports_with_a_safe_file_name(staff_browser: Client) -> None:
    topology = make_topology("ring3")
    Topology.objects.filter(pk=topology.pk).update(name=OLD_NAME)
    response = staff_browser.get(f"/admin/snapshots/topology/{topology.pk}/export/")
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="evil___Set-Cookie: x=1__gnp.json"'
    assert "Set-Cookie" not in response.headers
    # Shown escaped wherever the model is named (the admin's lists and titles).
    assert str(Topology.objects.get(pk=topology.pk)) == repr(OLD_NAME)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (DEEP.encode(), "nested 50000 levels deep"),
        (b'{"name": "r\xffng"}', "not UTF-8 text"),
        (b" " * (2_621_440 + 1), "larger than"),
    ],
    ids=["deep", "not-utf8", "too-large"],
)
def test_the_admin_import_refuses_a_hostile_file_in_words(staff_browser: Client, content: bytes, words: str) -> None:
    upload = SimpleUploadedFile("hostile.json", content, content_type="application/json")
    response = staff_browser.post("/admin/snapshots/topology/import/", {"file": upload})
    assert response.status_code == 200  # the form again, with the error
    assert words in response.content.decode()
    assert not Topology.objects.exists()
