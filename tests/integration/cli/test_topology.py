"""``topology import | list | export`` end to end, each command in a process of its own."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from snapshots.models import Topology
from tests.integration.cli.support import DIRECTED, TOKEN_PAIR
from tests.integration.engine_helpers import cli, cli_concurrently, describe, parse_json_output

pytestmark = pytest.mark.usefixtures("transactional_db")  # the CLI is another process: it sees commits only


def test_a_topology_round_trips_through_import_list_and_export(tmp_path: Path) -> None:
    files = {}
    for data in (DIRECTED, TOKEN_PAIR):
        files[data["name"]] = tmp_path / f"{data['name']}.json"
        files[data["name"]].write_text(json.dumps(data))

    imported = cli_concurrently([["topology", "import", str(path)] for path in files.values()])
    assert [d.returncode for d in imported] == [0, 0], [describe(d) for d in imported]
    assert imported[0].stdout.strip().endswith("imported cli-directed-4: 4 processes, 5 channels")

    listed, directed, token = cli_concurrently(
        [["topology", "list"], ["topology", "export", "cli-directed-4"], ["topology", "export", "cli-token-pair"]]
    )
    assert listed.returncode == 0, describe(listed)
    rows = {line.split()[0]: line.split()[1:] for line in listed.stdout.splitlines()[1:]}
    assert rows["cli-directed-4"] == ["bank", "4", "5"] and rows["cli-token-pair"] == ["token", "2", "2"], rows
    # What goes in comes out: names, balances or tokens, and the channels in their order.
    assert parse_json_output(directed) == DIRECTED
    assert parse_json_output(token) == TOKEN_PAIR


@pytest.mark.parametrize(
    ("content", "problems"),
    [
        pytest.param(
            {**DIRECTED, "channels": [["a", "b"], ["b", "a"], ["b", "c"], ["c", "d"]]},
            ["c cannot reach a", "the graph must be strongly connected"],
            id="not-strongly-connected",
        ),
        pytest.param(
            {**DIRECTED, "channels": [["a", "a"], ["a", "b"], ["a", "b"], *DIRECTED["channels"][1:]]},
            ["channel a→a is a self-loop", "channel a→b is defined twice"],
            id="self-loop-and-duplicate",
        ),
        pytest.param("{not json", ["is not valid JSON"], id="not-json"),
    ],
)
def test_an_invalid_topology_file_is_refused_naming_the_problem(
    tmp_path: Path, content: Any, problems: list[str]
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    done = cli("topology", "import", str(path))
    assert done.returncode != 0, describe(done)
    for problem in problems:
        assert problem in done.stderr, describe(done)
    assert "Traceback" not in done.stderr, describe(done)
    assert not Topology.objects.exists()
