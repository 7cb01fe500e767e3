"""Channel names on the wire (cluster/core/wire.py): written one way, read in two spellings.

Cutline writes a channel as ``"p1→p2"`` (:func:`channel_id`); people may type the ASCII
``"p1->p2"``, with spaces round the arrow, and both must name the same channel
(:func:`parse_channel_id`). What names no channel is None to the parser, an error to
:func:`split_channel_id` (ids Cutline wrote itself) and left exactly as typed by
:func:`normal_channel_id`, so the caller's refusal quotes what the user gave.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cluster.core.topology import NAME_PATTERN
from cluster.core.wire import (
    ALGORITHM_LABELS,
    ALGORITHMS,
    ARROW,
    ASCII_ARROW,
    CHANDY_LAMPORT,
    LAI_YANG,
    channel_id,
    normal_channel_id,
    parse_channel_id,
    split_channel_id,
)

# Any process name a topology accepts (cluster/core/topology.py), arrows' characters included.
NAMES = st.from_regex(NAME_PATTERN, fullmatch=True)
SPACES = st.sampled_from(["", " ", "  ", "\t", " \n "])

NOT_CHANNELS = [
    "",
    " ",
    "p1",
    "p1 p2",
    "→",
    "->",
    " -> ",
    "→p2",
    "p1→",
    " → p2",
    "p1 ->  ",
    "p1-p2",
    "p1>p2",
    "p1=>p2",
    "p1<-p2",
    "p1—p2",  # an em dash is not an arrow
    "p1- >p2",
]


def test_a_channel_is_written_with_the_arrow() -> None:
    assert channel_id("p1", "p2") == "p1→p2"
    assert channel_id("a-", ".b") == f"a-{ARROW}.b"
    assert (ARROW, ASCII_ARROW) == ("→", "->")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("p1→p2", ("p1", "p2")),
        ("p1->p2", ("p1", "p2")),
        ("p1 → p2", ("p1", "p2")),
        ("p1 -> p2", ("p1", "p2")),
        ("  p1→p2  ", ("p1", "p2")),
        ("\tp1 ->\np2\n", ("p1", "p2")),
        ("bank.eu-1→bank_us", ("bank.eu-1", "bank_us")),
        ("q→p", ("q", "p")),
        ("p1→p1", ("p1", "p1")),  # a self-loop is a name all the same: the topology refuses it
    ],
)
def test_either_spelling_with_any_spaces_round_the_arrow_names_a_channel(text: str, expected: Any) -> None:
    assert parse_channel_id(text) == expected
    assert split_channel_id(text) == expected
    assert normal_channel_id(text) == channel_id(*expected)


def test_a_dash_ending_the_sender_is_part_of_its_name_in_either_spelling() -> None:
    # Names may end in "-", so "a-->b" is a- to b: the ASCII arrow is the "->" before the ">".
    assert parse_channel_id("a-->b") == ("a-", "b")
    assert parse_channel_id("a-→b") == ("a-", "b")
    assert parse_channel_id("a- -> -b") == ("a-", "-b")


def test_the_arrow_is_read_before_the_ascii_one() -> None:
    # Only one of them is the arrow; whatever the other side holds is left to the name checks.
    assert parse_channel_id("p1→p2->p3") == ("p1", "p2->p3")
    assert parse_channel_id("p1->p2→p3") == ("p1->p2", "p3")


@pytest.mark.parametrize("text", NOT_CHANNELS)
def test_text_that_names_no_channel_is_none_to_the_parser(text: str) -> None:
    assert parse_channel_id(text) is None


@pytest.mark.parametrize("text", NOT_CHANNELS)
def test_splitting_text_that_names_no_channel_is_an_error_quoting_it(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        split_channel_id(text)
    assert str(raised.value) == f"{text!r} is not a channel id such as 'p1→p2'"


@pytest.mark.parametrize("text", NOT_CHANNELS)
def test_normalising_text_that_names_no_channel_leaves_it_exactly_as_given(text: str) -> None:
    assert normal_channel_id(text) == text


def test_normalising_a_channel_id_cutline_wrote_changes_nothing() -> None:
    assert normal_channel_id("p1→p2") == "p1→p2"
    assert normal_channel_id(normal_channel_id(" p1 -> p2 ")) == "p1→p2"


@given(NAMES, NAMES)
def test_every_channel_id_reads_back_as_its_two_names(src: str, dst: str) -> None:
    assert parse_channel_id(channel_id(src, dst)) == (src, dst)
    assert split_channel_id(channel_id(src, dst)) == (src, dst)


@given(NAMES, NAMES, SPACES, SPACES, SPACES, SPACES, st.sampled_from([ARROW, ASCII_ARROW]))
def test_any_spelling_of_a_channel_normalises_to_its_id(
    src: str, dst: str, lead: str, before: str, after: str, trail: str, arrow: str
) -> None:
    text = f"{lead}{src}{before}{arrow}{after}{dst}{trail}"
    assert parse_channel_id(text) == (src, dst)
    assert normal_channel_id(text) == channel_id(src, dst)


def test_every_algorithm_has_a_label() -> None:
    assert ALGORITHMS == (CHANDY_LAMPORT, LAI_YANG) == ("chandy-lamport", "lai-yang")
    assert list(ALGORITHM_LABELS) == list(ALGORITHMS)
    assert ALGORITHM_LABELS == {"chandy-lamport": "Chandy–Lamport", "lai-yang": "Lai–Yang"}
