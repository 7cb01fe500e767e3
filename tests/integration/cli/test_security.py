"""What a hostile file or argument did to the CLI: each is now a one-line error.

Every command runs in a process of its own, as from a shell; none may print a traceback
or read without bound (``/dev/zero``), and nothing may have been stored.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapshots.models import Topology
from tests.integration.engine_helpers import cli, describe

pytestmark = pytest.mark.usefixtures("transactional_db")  # the CLI is another process: it sees commits only

RING = {
    "name": "ring",
    "workload": "bank",
    "processes": [{"name": "p1", "balance": 10}, {"name": "p2", "balance": 10}],
    "channels": [["p1", "p2"], ["p2", "p1"]],
}


def _refused(args: list[str], words: str) -> None:
    done = cli(*args, timeout=60)
    assert done.returncode != 0, describe(done)
    assert "Traceback" not in done.stderr, describe(done)
    assert words in done.stderr, describe(done)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (("[" * 50_000 + "]" * 50_000).encode(), "nested 50000 levels deep"),
        (json.dumps({**RING, "processes": []}).replace("[]", "1" * 5000).encode(), "a number has 5000 characters"),
        (json.dumps(RING).encode().replace(b'"ring"', b'"r\xffng"'), "not UTF-8 text"),
        (json.dumps({**RING, "name": "evil\u202egnp.json"}).encode(), "may hold no control or bidi characters"),
        (json.dumps({**RING, "name": 'a"; filename=x'}).encode(), "may hold no control or bidi characters"),
    ],
    ids=["deep", "huge-int", "not-utf8", "bidi-name", "quoted-name"],
)
def test_a_hostile_topology_file_is_one_error_line_and_stores_nothing(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "hostile.json"
    path.write_bytes(content)
    _refused(["topology", "import", str(path)], words)
    assert not Topology.objects.exists()


def test_an_endless_file_is_read_no_further_than_the_limit() -> None:
    _refused(["topology", "import", "/dev/zero"], "is larger than")


@pytest.mark.parametrize("limit", ["99999999999999999999", "0", "-5", "ten"])
def test_run_events_refuses_a_limit_out_of_range(limit: str) -> None:
    _refused(["run", "events", "1", "--limit", limit], "give a whole number from 1 to")
