"""Watchpoint conditions (cluster/core/conditions.py): what they mean, what they refuse, and safety.

People type conditions, so three things matter: a good condition means what it says,
a bad one is refused with a message that points at the mistake, and no text at all
makes the parser or the evaluator do anything but answer (never run code).
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.core.conditions import MAX_DEPTH, MAX_LENGTH, Condition, ConditionError, known_names, parse


def holds(text: str, state: dict[str, Any] | None = None, **event: Any) -> bool:
    return parse(text).evaluate(state or {}, **event)


def refusal(text: Any, workload: str | None = "bank") -> str:
    with pytest.raises(ConditionError) as refused:
        parse(text, workload)
    return str(refused.value)


# --- meaning -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "state", "expected"),
    [
        ("balance < 10", {"balance": 7}, True),
        ("balance < 10", {"balance": 10}, False),
        ("balance <= 10", {"balance": 10}, True),
        ("balance >= 10 and balance != 11", {"balance": 12}, True),
        ("0 < balance < 10", {"balance": 5}, True),
        ("0 < balance < 10", {"balance": 0}, False),
        ("1 < 2 < balance", {"balance": 2}, False),
        ("balance == 7 or tokens == 1", {"balance": 0, "tokens": 1}, True),
        ("not active", {"active": False}, True),
        ("active == True", {"active": True}, True),
        ("active", {"active": True}, True),
        ("balance % 2 == 1", {"balance": 7}, True),
        ("balance * 2 - 4 == 10", {"balance": 7}, True),
        ("balance / 2 == 3.5", {"balance": 7}, True),
        ("-balance < -5", {"balance": 7}, True),
        ("+balance == 7", {"balance": 7}, True),
        ("status == 'hungry'", {"status": "hungry"}, True),
        ('status == "hungry"', {"status": "thinking"}, False),
        ("'p2' in held", {"held": ["p2", "p5"]}, True),
        ("'p3' not in held", {"held": ["p2", "p5"]}, True),
        ("len(waiting) > 0", {"waiting": ["p1"]}, True),
        ("len(waiting) == 0", {"waiting": []}, True),
        ("len(status) == 6", {"status": "hungry"}, True),
        ("'ung' in status", {"status": "hungry"}, True),
        ("held == ['p2']", {"held": ["p2"]}, True),
        ("balance in [1, 2, 3]", {"balance": 2}, True),
        ("balance in (1, 2, 3)", {"balance": 4}, False),
        ("(balance + 1) * 2 == 16", {"balance": 7}, True),
        ("2.5 < balance", {"balance": 3}, True),
    ],
)
def test_a_state_condition_means_what_it_says(text: str, state: dict[str, Any], expected: bool) -> None:
    condition = parse(text)
    assert condition.kind == "state"
    assert condition.evaluate(state) is expected


def test_an_event_condition_reads_the_message_and_its_sender() -> None:
    condition = parse("src == 'p1' and msg.amount > 50", "bank")
    assert condition.kind == "event"
    assert condition.names == ("src", "msg.amount")
    assert condition.evaluate({"balance": 3}, {"amount": 55}, "p1")
    assert not condition.evaluate({"balance": 3}, {"amount": 55}, "p2")
    assert not condition.evaluate({"balance": 3}, {"amount": 5}, "p1")


@pytest.mark.parametrize("text", ["src == 'p1'", "msg.amount > 0", "balance > 0 and msg.amount > 0"])
def test_mentioning_msg_or_src_makes_an_event_condition(text: str) -> None:
    assert parse(text).kind == "event"


def test_process_is_the_process_own_name() -> None:
    condition = parse("process == 'p3' and balance < 5", "bank")
    assert condition.kind == "state"
    assert condition.evaluate({"balance": 1}, process="p3")
    assert not condition.evaluate({"balance": 1}, process="p4")


@pytest.mark.parametrize(
    ("text", "state", "event"),
    [
        ("balance < 'ten'", {"balance": 3}, {}),  # a string against a number
        ("not (balance < 'ten')", {"balance": 3}, {}),  # the whole condition is false, not just the part
        ("balance < 10", {}, {}),  # the key is missing
        ("msg.amount > 0", {}, {}),  # no message
        ("msg.amount > 0", {}, {"message": {"tokens": 1}, "src": "p1"}),  # the message has no such key
        ("src == 'p1'", {}, {}),  # no sender
        ("process == 'p1'", {}, {}),  # no process name given
        ("balance / 0 > 1", {"balance": 3}, {}),
        ("balance % 0 > 1", {"balance": 3}, {}),
        ("len(balance) > 0", {"balance": 3}, {}),
        ("-status == 1", {"status": "hungry"}, {}),
        ("status + 1 == 2", {"status": "hungry"}, {}),
        ("1 in balance", {"balance": 3}, {}),
        ("1 in status", {"status": "hungry"}, {}),
        ("held in {'a': 1}", {"held": ["p2"]}, {}),  # refused by the parser anyway: a dict literal
        (
            "balance * 999999999999999999999 * 999999999999999999999 * 9999999999999999999999 > 1",
            {"balance": 10**70},
            {},
        ),
    ],
)
def test_values_that_do_not_fit_make_the_condition_false(text: str, state: dict[str, Any], event: Any) -> None:
    try:
        condition = parse(text)
    except ConditionError:
        return
    assert condition.evaluate(state, **event) is False


def test_and_or_short_circuit_as_in_python() -> None:
    # The right side would be undefined (no message), but the left settles it.
    assert holds("balance > 0 or msg.amount > 0", {"balance": 1})
    assert not holds("balance < 0 and msg.amount > 0", {"balance": 1})


def test_without_a_workload_any_name_is_accepted_and_a_missing_one_is_false() -> None:
    condition = parse("anything > 3")
    assert condition.evaluate({"anything": 4})
    assert not condition.evaluate({"other": 4})


def test_describe_shows_the_values_read() -> None:
    assert parse("balance < 10").describe({"balance": 7}) == "balance = 7"
    assert parse("src == 'p1' and msg.amount > 50").describe({}, {"amount": 55}, "p1") == "src = p1, msg.amount = 55"
    assert parse("tokens == 1").describe({}) == "tokens = (missing)"


def test_a_condition_exports_its_text_and_kind() -> None:
    condition = parse("msg.amount > 50", "bank")
    assert condition.to_dict() == {"text": "msg.amount > 50", "kind": "event", "names": ["msg.amount"]}
    assert isinstance(condition, Condition) and condition.text == "msg.amount > 50"


def test_conditions_compare_by_text() -> None:
    assert parse("balance < 3") == parse("balance < 3")
    assert parse("balance < 3") != parse("balance < 4")


# --- names -------------------------------------------------------------------------------------


def test_known_names_are_the_state_keys_then_the_rest() -> None:
    assert known_names("bank") == ["balance", "process", "src", "msg.amount"]
    assert known_names("diffusion") == ["active", "jobs", "done", "process", "src", "msg.jobs"]
    assert known_names("philosophers")[:4] == ["status", "forks", "held", "waiting"]
    assert known_names("philosophers")[-3:] == ["msg.forks", "msg.to", "msg.request"]


@pytest.mark.parametrize("workload", ["bank", "token", "diffusion", "philosophers"])
def test_every_known_name_parses(workload: str) -> None:
    for name in known_names(workload):
        parse(f"{name} == 1", workload)


def test_an_unknown_workload_is_refused() -> None:
    assert refusal("balance < 1", "lottery") == "unknown workload 'lottery'"


# --- refusals, pointing at the mistake ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("balanse < 10", "col 1: unknown name 'balanse' (known: balance, process, src, msg.amount)"),
        ("balance < 10 and balanse > 2", "col 18: unknown name 'balanse' (known: balance, process, src, msg.amount)"),
        ("'é→' == balanse", "col 9: unknown name 'balanse' (known: balance, process, src, msg.amount)"),
        ("msg.amout > 3", "col 1: a bank message has no key 'amout' (known: msg.amount)"),
        ("msg > 3", "col 1: msg is the message's payload: write msg.<key>, e.g. msg.amount"),
        ("balance.real > 3", "col 1: only the message has fields: write msg.<key>, e.g. msg.amount"),
        ("balance = 5", "col 9: '=' is not a comparison: write '==' (or '<=', '>=', '!=')"),
        ("balance < ", "col 10: invalid syntax: the condition ends too soon"),
        ("(balance < 5", "col 1: '(' was never closed"),
        ("balance < 5 5", "col 13: invalid syntax"),
        ("balance ** 2 > 1", "col 9: '**' is not allowed; conditions use"),
        ("(balance) // 2 > 1", "col 11: '//' is not allowed; write /"),
        ("balance is 5", "col 9: 'is' is not allowed; write =="),
        ("balance is not 5", "col 9: 'is not' is not allowed; write !="),
        ("balance & 1", "col 9: '&' is not allowed"),
        ("~balance", "col 1: '~' is not allowed"),
        ("len", "col 1: len is used as len(…)"),
        ("len(held, 2) > 1", "col 1: len(…) takes exactly one value"),
        ("len(x=held) > 1", "col 1: len(…) takes exactly one value"),
        ("max(balance, 1) > 1", "col 1: only len(…) can be called"),
        ("__import__('os').system('true')", "col 1: only len(…) can be called"),
        ("open('/etc/passwd')", "col 1: only len(…) can be called"),
        ("held[0] == 'p2'", "col 1: indexing with [...] is not allowed"),
        ("lambda: 1", "col 1: lambda is not allowed"),
        ("[b for b in held]", "col 1: a comprehension is not allowed"),
        ("balance if balance else 0", "col 1: '… if … else …' is not allowed"),
        ("{'a': 1}", "col 1: a dict {…} is not allowed"),
        ("(x := 1)", "col 2: ':=' is not allowed"),
        ("f'{balance}' == '1'", "col 1: an f-string is not allowed"),
        ("None == balance", "col 1: None is not allowed here; use numbers, strings, True or False"),
        ("b'x' == balance", "col 1: b'x' is not allowed here"),
        ("... == balance", "col 1: Ellipsis is not allowed here"),
        ("1j == balance", "col 1: complex numbers are not allowed"),
        ("balance < 5, 3", "col 1: a condition is one expression, not a list; join parts with 'and' or 'or'"),
        ("balance < 1\nor True", "col 12: a condition is one line of printable characters"),
        ("balance\t< 1", "col 8: a condition is one line of printable characters"),
        ("", "the condition is empty"),
        ("   ", "the condition is empty"),
        (42, "a condition must be text"),
        ("1 < " * 0 + "balance < " + "1" * MAX_LENGTH, f"at most {MAX_LENGTH} characters long"),
        ("not " * MAX_DEPTH + "balance", f"nested more than {MAX_DEPTH} deep"),
        ("[" + ", ".join(["1"] * 21) + "] == held", "a list may hold at most 20 items"),
    ],
)
def test_a_bad_condition_is_refused_pointing_at_the_mistake(text: Any, message: str) -> None:
    assert message in refusal(text)


def test_spaces_round_a_condition_mean_nothing_but_columns_still_count_them() -> None:
    condition = parse("  balance < 5 ")
    assert condition.text == "balance < 5" and condition.evaluate({"balance": 1})
    assert refusal("   balanse < 5") == "col 4: unknown name 'balanse' (known: balance, process, src, msg.amount)"
    assert refusal("  balance = 5") == "col 11: '=' is not a comparison: write '==' (or '<=', '>=', '!=')"


def test_a_refusal_keeps_its_message_and_column_apart() -> None:
    with pytest.raises(ConditionError) as refused:
        parse("balance < 10 and tokns > 1", "token")
    assert refused.value.column == 1  # "balance" is the unknown name for token
    assert refused.value.message.startswith("unknown name 'balance'")
    assert isinstance(refused.value, ValueError)


# --- safety ---------------------------------------------------------------------------------------


@contextmanager
def no_code_runs() -> Iterator[None]:
    """``eval`` and ``exec`` may not be called at all, and ``compile`` only to make a syntax tree."""
    real_compile = builtins.compile

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a condition ran code")

    def tree_only(source: Any, filename: Any, mode: str, flags: int = 0, *args: Any, **kwargs: Any) -> Any:
        if not flags & ast.PyCF_ONLY_AST:
            raise AssertionError("a condition was compiled to code")
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    saved = builtins.eval, builtins.exec, builtins.compile
    builtins.eval, builtins.exec, builtins.compile = forbidden, forbidden, tree_only  # type: ignore[assignment]
    try:
        yield
    finally:
        builtins.eval, builtins.exec, builtins.compile = saved


def test_the_guard_sees_code_being_run() -> None:
    # Without this, the safety tests below would also pass if the guard could never see anything.
    with no_code_runs(), pytest.raises(AssertionError, match="compiled to code"):
        compile("1", "<test>", "eval")


def test_a_condition_that_tries_to_run_code_is_refused_and_runs_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    attempts = [
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        "().__class__.__bases__[0].__subclasses__()",
        "msg.__class__",
        "[c for c in ().__class__.__mro__]",
        "(lambda: exec('1'))()",
        "eval('1')",
    ]
    with no_code_runs():
        for text in attempts:
            with pytest.raises(ConditionError):
                parse(text)
    assert not marker.exists()


@pytest.mark.parametrize("text", ["msg.__class__ == 1", "__builtins__ == 1", "__name__"])
def test_dunder_names_are_refused_even_without_a_workload(text: str) -> None:
    assert "names starting with '__' are not allowed" in refusal(text, None)


VOCABULARY = [
    "balance", "tokens", "msg", ".", "amount", "src", "process", "len", "(", ")", "[", "]", ",", "and", "or",
    "not", "in", "is", "==", "!=", "<", "<=", ">", ">=", "=", "+", "-", "*", "/", "%", "**", "//", "0", "1",
    "7", "2.5", "1e308", "'p1'", '"x"', "True", "False", "None", "lambda", ":", "if", "else", "__import__",
    "__class__", "{", "}", "'", "@", "~", "&", "|", "^", "\\", "#", "é", "→", "\n", "\t", "f'", "j", " ",
]  # fmt: skip
TOKENS = st.lists(st.sampled_from(VOCABULARY), max_size=40).map(" ".join)
STATES = st.dictionaries(
    st.sampled_from(["balance", "tokens", "amount", "status", "held"]),
    st.one_of(
        st.integers(-(10**30), 10**30),
        st.floats(allow_nan=True),
        st.text(max_size=5),
        st.booleans(),
        st.none(),
        st.lists(st.text(max_size=3), max_size=3),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    ),
)
random_text = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@random_text
@given(text=st.one_of(st.text(max_size=MAX_LENGTH + 20), TOKENS), state=STATES, message=STATES, src=st.text(max_size=3))
def test_any_text_is_parsed_or_refused_in_words_and_never_runs_code(
    text: str, state: dict[str, Any], message: dict[str, Any], src: str
) -> None:
    with no_code_runs():
        try:
            condition = parse(text)
        except ConditionError as refused:
            assert str(refused) and (refused.column is None or 1 <= refused.column <= len(text) + 1)
            return
        for workload in ("bank", "philosophers"):
            try:
                parse(text, workload)
            except ConditionError as refused:
                assert str(refused)
        assert condition.kind in ("state", "event")
        assert isinstance(condition.evaluate(state, message, src, process="p1"), bool)
        assert isinstance(condition.evaluate(state), bool)
        assert isinstance(condition.describe(state, message, src), str)


ATOMS = st.sampled_from(
    [
        *("balance", "tokens", "status", "held", "msg.amount", "src", "process"),
        *("0", "7", "-2.5", "1e308", "'p1'", "True", "len(held)", "len(status)", "[1, 'p1']"),
    ]
)
CONDITIONS = st.recursive(
    ATOMS,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%"]), inner).map(
            lambda t: f"(({t[0]}) {t[1]} ({t[2]}))"
        ),
        st.tuples(inner, st.sampled_from(["==", "!=", "<", "<=", ">", ">=", "in", "not in"]), inner).map(
            lambda t: f"({t[0]}) {t[1]} ({t[2]})"
        ),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(lambda t: f"(({t[0]}) {t[1]} ({t[2]}))"),
        inner.map(lambda t: f"not ({t})"),
        inner.map(lambda t: f"-({t})"),
    ),
    max_leaves=8,
).filter(lambda text: len(text) <= MAX_LENGTH)


@random_text
@given(text=CONDITIONS, state=STATES, message=STATES, src=st.text(max_size=3))
def test_a_well_formed_condition_always_evaluates_to_true_or_false(
    text: str, state: dict[str, Any], message: dict[str, Any], src: str
) -> None:
    with no_code_runs():
        condition = parse(text)
        assert condition.kind == ("event" if "msg." in text or "src" in text else "state")
        assert isinstance(condition.evaluate(state, message, src, process="p1"), bool)
