"""Flow control's pure rules: the windows a run's budget gives, and which channels are full."""

from __future__ import annotations

from cluster.core.flow import MIN_WINDOW, RUN_BUDGET, full_channels, window


def test_a_run_shares_its_budget_among_its_channels() -> None:
    assert window(8) == RUN_BUDGET // 8
    assert window(3000) == MIN_WINDOW
    assert window(0) == RUN_BUDGET


def test_a_channel_is_full_once_a_window_is_in_flight() -> None:
    sent = {"a": 10, "b": 4, "c": 0}
    applied = {"a": 7, "b": 0}
    assert full_channels(sent, applied, 4) == ["b"]
    assert full_channels(sent, applied, 3) == ["a", "b"]


def test_a_channel_nothing_is_known_of_counts_all_it_sent_as_in_flight() -> None:
    assert full_channels({"a": 2}, {}, 2) == ["a"]


def test_a_window_of_zero_is_no_flow_control() -> None:
    assert full_channels({"a": 10_000}, {}, 0) == []
