"""Data-driven scenarios: a topology and a scripted sequence of moves, and golden snapshots.

Each ``scenarios/NAME.json`` holds a topology, a seed and a script of simulator actions
(``["act", p]``, ``["deliver", src, dst]``, ``["initiate", p, id]``, ``["run_random", n]``,
``["stabilize"]`` …); ``scenarios/NAME.golden.json`` holds the snapshots it must produce,
in the export shape, reviewed by hand. Regenerate the goldens after an intended change
with ``UPDATE_GOLDEN=1`` and review the diff: a golden is only worth what its review was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from cluster.core.simulator import Simulator
from cluster.core.workloads import state_value
from tests.unit.snapshot_checks import assert_snapshot_sound

SCENARIOS = Path(__file__).parent / "scenarios"
UPDATE_GOLDEN = os.environ.get("UPDATE_GOLDEN") == "1"


def scenario_paths() -> list[Path]:
    return sorted(p for p in SCENARIOS.glob("*.json") if not p.name.endswith(".golden.json"))


def load(name: str) -> dict[str, Any]:
    return json.loads((SCENARIOS / f"{name}.json").read_text())


def play(scenario: dict[str, Any]) -> tuple[Simulator, list[dict[str, str]]]:
    """Run a scenario; also return every snapshot's status at each ``initiate``."""
    sim = Simulator(scenario["topology"], scenario["seed"], params=scenario.get("params"))
    at_initiate: list[dict[str, str]] = []
    for action in scenario["script"]:
        if action[0] == "initiate":
            at_initiate.append({str(s): sim.snapshot_status(s) for s in sim.snapshots})
        sim.apply(action)
    return sim, at_initiate


def golden_text(exports: list[dict[str, Any]]) -> str:
    """Goldens one record per line, so a reviewer reads a snapshot like a table."""

    def one(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False)

    blocks = []
    for e in exports:
        processes = ",\n".join(f"        {one(p)}" for p in e["processes"])
        channels = ",\n".join(f"        {one(c)}" for c in e["channels"])
        blocks.append(
            "    {\n"
            f'      "id": {one(e["id"])}, "initiator": {one(e["initiator"])}, "algorithm": {one(e["algorithm"])},'
            f' "status": {one(e["status"])},\n'
            f'      "processes": [\n{processes}\n      ],\n'
            f'      "channels": [\n{channels}\n      ],\n'
            f'      "verdict": {one(e["verdict"])}\n'
            "    }"
        )
    return '{\n  "snapshots": [\n' + ",\n".join(blocks) + "\n  ]\n}\n"


@pytest.mark.parametrize("path", scenario_paths(), ids=lambda p: p.stem)
def test_scenario_produces_its_golden_snapshots(path: Path) -> None:
    scenario = json.loads(path.read_text())
    sim, _ = play(scenario)
    exports = [assert_snapshot_sound(sim, s) for s in sorted(sim.snapshots)]
    golden = path.with_suffix(".golden.json")
    if UPDATE_GOLDEN:
        golden.write_text(golden_text(exports))
    assert golden.exists(), f"no golden for {path.name}: run with UPDATE_GOLDEN=1, then review it"
    assert exports == json.loads(golden.read_text())["snapshots"]


@pytest.mark.parametrize("path", scenario_paths(), ids=lambda p: p.stem)
def test_scenario_conserves_the_workload_total_to_the_end(path: Path) -> None:
    sim, _ = play(json.loads(path.read_text()))
    assert all(not queue for queue in sim.channels.values())
    # Every channel is empty after the final stabilize, so the processes hold it all.
    assert sum(state_value(sim.workload, p.state) for p in sim.processes.values()) == sim.expected_total
    assert sim.live_total() == sim.expected_total


@pytest.mark.parametrize(
    "path",
    [p for p in scenario_paths() if json.loads(p.read_text())["snapshots_overlap"] is not None],
    ids=lambda p: p.stem,
)
def test_scenario_snapshots_overlap_as_described(path: Path) -> None:
    # The concurrent scenarios are only worth having if their snapshots really run at
    # once; the sequential ones only if each finished before the next began.
    scenario = json.loads(path.read_text())
    _, at_initiate = play(scenario)
    earlier = [status for statuses in at_initiate for status in statuses.values()]
    assert earlier, "a scenario that says how its snapshots overlap needs at least two"
    expected = "running" if scenario["snapshots_overlap"] else "complete"
    assert set(earlier) == {expected}, at_initiate


def test_the_paper_example_catches_the_token_in_each_of_its_four_places() -> None:
    sim, _ = play(load("paper_token_2"))
    places = []
    for snapshot in sorted(sim.snapshots):
        export = sim.snapshot_export(snapshot)
        at = [p["process"] for p in export["processes"] if p["state"]["tokens"]]
        at += [f"{c['src']}→{c['dst']}" for c in export["channels"] for m in c["messages"]]
        places.append(at)
    # in-p, in-c', in-c, in-q: the four global states of the paper's figure.
    assert places == [["p"], ["q→p"], ["p→q"], ["q"]]


def test_the_concurrent_scenario_runs_five_snapshots_that_see_each_others_markers() -> None:
    sim, at_initiate = play(load("bank_8_concurrent"))
    assert len(sim.snapshots) == 5
    assert list(at_initiate[-1].values()) == ["running"] * 4
    seen_others = {
        m["snapshot"] for s in sim.snapshots for c in sim.snapshot_export(s)["channels"] for m in c["markers"]
    }
    assert seen_others == {1, 2, 3, 4, 5}


def test_the_directed_scenario_has_no_channel_both_ways() -> None:
    channels = {tuple(c) for c in load("bank_10_directed")["topology"]["channels"]}
    assert len(channels) == 16
    assert not any((dst, src) in channels for src, dst in channels)
