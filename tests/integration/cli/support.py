"""Sample topologies and output parsing shared by the command-line tests (no tests here)."""

from __future__ import annotations

import re

DIRECTED = {
    "name": "cli-directed-4",
    "workload": "bank",
    "processes": [{"name": n, "balance": b} for n, b in (("a", 10), ("b", 20), ("c", 30), ("d", 40))],
    "channels": [["a", "b"], ["b", "c"], ["c", "d"], ["d", "a"], ["a", "c"]],
}
TOKEN_PAIR = {
    "name": "cli-token-pair",
    "workload": "token",
    "processes": [{"name": "x", "tokens": 0}, {"name": "y", "tokens": 1}],
    "channels": [["x", "y"], ["y", "x"]],
}


def status_table(stdout: str) -> dict[str, str]:
    """``run status`` prints ``key  value`` rows; keys have spaces, so split on the wide gap."""
    return dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in stdout.splitlines() if line.strip())
