"""The verdict on recorded state (cluster/core/verdict.py), on hand-made exports.

The baseline is a real consistent cut of a three-bank ring p1→p2→p3→p1, $100 each:
p1 sent $10 to p2 (seq 1) before recording; p2 recorded before receiving it, so it is
in p1→p2; p2 sent $5 to p3 (seq 1), which p3 received before recording. Each test
breaks one thing and expects the verdict to say so.
"""

from __future__ import annotations

import copy
from typing import Any

from cluster.core.verdict import compute_verdict

NAMES = ["p1", "p2", "p3"]
CHANNELS = [("p1", "p2"), ("p2", "p3"), ("p3", "p1")]


def cut() -> dict[str, Any]:
    return {
        "processes": [
            {"process": "p1", "state": {"balance": 90}, "sent": {"p2": 1}, "received": {"p3": 0}, "clock": {"p1": 1}},
            {"process": "p2", "state": {"balance": 95}, "sent": {"p3": 1}, "received": {"p1": 0}, "clock": {"p2": 1}},
            {
                "process": "p3",
                "state": {"balance": 105},
                "sent": {"p1": 0},
                "received": {"p2": 1},
                "clock": {"p2": 1, "p3": 1},
            },
        ],
        "channels": [
            {"src": "p1", "dst": "p2", "messages": [{"seq": 1, "payload": {"amount": 10}}], "markers": []},
            {"src": "p2", "dst": "p3", "messages": [], "markers": []},
            {"src": "p3", "dst": "p1", "messages": [], "markers": []},
        ],
    }


def verdict(export: dict[str, Any], expected_total: int = 300) -> dict[str, Any]:
    return compute_verdict(
        NAMES, CHANNELS, "balance", "amount", expected_total, export["processes"], export["channels"]
    )


def process(export: dict[str, Any], name: str) -> dict[str, Any]:
    return next(p for p in export["processes"] if p["process"] == name)


def channel(export: dict[str, Any], src: str, dst: str) -> dict[str, Any]:
    return next(c for c in export["channels"] if (c["src"], c["dst"]) == (src, dst))


def test_it_finds_a_real_cut_consistent_and_conserved() -> None:
    assert verdict(cut()) == {
        "consistent": True,
        "conserved": True,
        "expected_total": 300,
        "recorded_total": 300,
        "problems": [],
    }


def test_it_accepts_other_snapshots_markers_as_part_of_a_channel() -> None:
    export = cut()
    process(export, "p1")["sent"]["p2"] = 2
    channel(export, "p1", "p2")["markers"] = [{"seq": 2, "snapshot": 9}]
    assert verdict(export)["problems"] == []


def test_it_reports_a_process_that_recorded_nothing() -> None:
    export = cut()
    export["processes"] = [p for p in export["processes"] if p["process"] != "p3"]
    result = verdict(export)
    assert not result["consistent"] and not result["conserved"]
    assert "no recorded state from p3" in result["problems"]


def test_it_reports_a_channel_that_recorded_nothing() -> None:
    export = cut()
    export["channels"] = [c for c in export["channels"] if c["src"] != "p1"]
    result = verdict(export)
    assert not result["consistent"] and not result["conserved"]
    assert "no recorded state for channel p1→p2" in result["problems"]


def test_it_reports_a_receive_without_its_send_by_seq() -> None:
    export = cut()
    process(export, "p3")["received"]["p2"] = 2  # p3 applied a seq p2 had not sent at its cut
    result = verdict(export)
    assert not result["consistent"]
    assert result["problems"] == [
        "p2→p3: p3 recorded receiving seq 2, but p2 recorded sending only up to 1 (a receive without its send)"
    ]


def test_it_reports_a_receive_without_its_send_by_vector_clock() -> None:
    # Seqs look fine, but p3's clock knows of 2 events of p2 while p2 recorded after 1:
    # p3 learnt (through some other path) of something p2 did after its cut.
    export = cut()
    process(export, "p3")["clock"] = {"p2": 2, "p3": 2}
    result = verdict(export)
    assert not result["consistent"]
    assert result["problems"] == [
        (
            "p3's recorded clock has seen 2 events of p2, but p2 recorded after only 1:"
            " p3 received a message p2 had not yet sent at its cut"
        )
    ]


def test_it_reports_a_channel_missing_a_message() -> None:
    export = cut()
    channel(export, "p1", "p2")["messages"] = []
    result = verdict(export)
    assert not result["consistent"] and not result["conserved"]
    assert result["problems"] == [
        (
            "p1→p2: seq 1 was sent before p1 recorded and not received before p2 recorded,"
            " but the channel's recorded state does not hold it"
        ),
        "balance not conserved: recorded 290, expected 300 (-10)",
    ]


def test_it_reports_an_extra_message_in_a_channel() -> None:
    export = cut()
    channel(export, "p2", "p3")["messages"] = [{"seq": 1, "payload": {"amount": 5}}]
    result = verdict(export)
    assert not result["consistent"] and not result["conserved"]
    assert result["problems"] == [
        (
            "p2→p3: recorded seq 1, which is outside (1, 1] — not sent before p2 recorded,"
            " or already received before p3 recorded"
        ),
        "balance not conserved: recorded 305, expected 300 (+5)",
    ]


def test_it_reports_messages_out_of_fifo_order() -> None:
    export = cut()
    process(export, "p1")["sent"]["p2"] = 2
    process(export, "p1")["state"]["balance"] = 87
    channel(export, "p1", "p2")["messages"] = [
        {"seq": 2, "payload": {"amount": 3}},
        {"seq": 1, "payload": {"amount": 10}},
    ]
    assert verdict(export)["problems"] == ["p1→p2: recorded messages out of FIFO order: seqs [2, 1]"]


def test_it_reports_a_total_that_is_not_conserved_even_when_the_cut_is_consistent() -> None:
    export = cut()
    process(export, "p2")["state"]["balance"] = 96
    result = verdict(export)
    assert result["consistent"] and not result["conserved"]
    assert result["recorded_total"] == 301
    assert result["problems"] == ["balance not conserved: recorded 301, expected 300 (+1)"]


def test_it_does_not_change_the_records_it_judges() -> None:
    export = cut()
    before = copy.deepcopy(export)
    verdict(export)
    assert export == before


# -- received sets beyond the prefix (non-FIFO channels) --------------------------------


def test_a_seq_received_above_the_prefix_is_not_in_the_channel() -> None:
    # p1 sent seqs 1..3 before its cut; p2 had received 1 and 3 (3 overtook 2), so only 2 is in p1→p2.
    export = cut()
    process(export, "p1")["sent"]["p2"] = 3
    process(export, "p1")["state"]["balance"] = 80
    p2 = process(export, "p2")
    p2["received"]["p1"], p2["received_above"] = 1, {"p1": [3]}
    p2["state"]["balance"] = 95 + 10 + 5
    channel(export, "p1", "p2")["messages"] = [{"seq": 2, "payload": {"amount": 5}}]
    assert verdict(export)["problems"] == []


def test_it_names_a_message_that_overtook_the_marker() -> None:
    export = cut()
    process(export, "p2")["received_above"] = {"p1": [3]}
    result = verdict(export)
    assert not result["consistent"]
    assert result["problems"][0] == (
        "p1→p2: p2 recorded receiving seq 3 from p1, which p1 sent after its cut (its marker was seq 2):"
        " the message overtook the marker — the channel is not FIFO"
    )


def test_it_reports_a_recorded_message_the_receiver_had_already_received() -> None:
    export = cut()
    process(export, "p1")["sent"]["p2"] = 2
    process(export, "p2")["received_above"] = {"p1": [2]}
    channel(export, "p1", "p2")["messages"].append({"seq": 2, "payload": {"amount": 0}})
    assert verdict(export)["problems"] == ["p1→p2: recorded seq 2, which p2 had already received before it recorded"]


def test_a_workload_without_a_conserved_quantity_has_no_conservation_verdict() -> None:
    export = cut()
    process(export, "p2")["state"]["balance"] = 1  # nothing to conserve: no complaint
    result = compute_verdict(NAMES, CHANNELS, None, None, 0, export["processes"], export["channels"])
    assert result == {
        "consistent": True,
        "conserved": None,
        "expected_total": 0,
        "recorded_total": None,
        "problems": [],
    }
