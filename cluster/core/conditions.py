"""Watchpoint conditions: a tiny, safe expression language over one process's state.

A watchpoint at a process makes that process start a snapshot itself when its
condition comes true. People type the condition, so it is parsed here once, checked
against a whitelist, and then interpreted by our own small walker — it is never
handed to ``eval``, ``exec`` or ``compile``-to-code, and it can read nothing but what
it is given. Pure, stdlib only.

The syntax is a slice of Python's (parsed by ``ast.parse(text, mode="eval")``)::

    balance < 10                      tokens == 1 and process == "p3"
    0 < balance <= 50                 status == "hungry" and len(waiting) > 0
    msg.amount > 50                   src in ["p1", "p2"] and msg.amount % 2 == 0

* ``and``, ``or``, ``not``; comparisons ``== != < <= > >=``, chained, and ``in`` / ``not in``;
* ``+ - * / %`` on numbers and unary ``-``;
* numbers, strings, ``True``, ``False``, lists of those in ``[...]``;
* names: the keys of the process's state (``balance``, ``tokens``, ``jobs`` …), ``process``
  (the process's own name) and, in an *event* condition, ``src`` (the sender) and
  ``msg.<key>`` (a key of the application message's payload);
* ``len(x)``.

A condition that mentions ``msg`` or ``src`` is an **event** condition: it is tried on
each application message a process applies. Any other is a **state** condition: it is
tried on the state after each step.

Evaluation never fails: a condition whose values do not fit — a string compared with a
number, a missing state or message key, ``msg`` outside a message, a division by zero —
is simply false, as a watchpoint that cannot be judged must not fire.
"""

from __future__ import annotations

import ast
import itertools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from cluster.core.workloads import WORKLOADS, Workload

MAX_LENGTH = 200  # characters: a condition is one line a person types
MAX_DEPTH = 20  # nesting of the parsed expression: plenty for a line, and the walker's recursion stays small
MAX_LIST = 20  # items in a [...] literal
MAX_NUMBER_BITS = 400  # ≈ 10**120: arithmetic growing a number past this makes the condition false

EVENT_NAMES = ("src", "msg")
RESERVED = ("process", *EVENT_NAMES)
GRAMMAR = "and/or/not, comparisons, + - * / %, numbers, strings, True/False, [lists], names, msg.<key> and len(…)"


class ConditionError(ValueError):
    """A condition that cannot be used; ``column`` (1-based, or None) points at the mistake."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(f"col {column}: {message}" if column else message)
        self.message = message
        self.column = column


class _Undefined(Exception):
    """Raised inside evaluation when the values do not fit; the condition is then false."""


@dataclass(frozen=True)
class Condition:
    """A parsed condition: ``text`` as typed (stripped), ``kind`` "state" or "event", the names it reads."""

    text: str
    kind: str
    names: tuple[str, ...]  # what it reads, in order of first mention: "balance", "src", "msg.amount" …
    tree: ast.expr = field(repr=False, compare=False)

    def evaluate(
        self,
        state: dict[str, Any],
        message: dict[str, Any] | None = None,
        src: str | None = None,
        process: str | None = None,
    ) -> bool:
        """Is the condition true for this state (and this applied message's payload and sender)?

        ``process`` is the process's own name, what ``process`` in a condition reads.
        Values that do not fit make the condition false (see the module's docstring).
        """
        try:
            return _truth(_Walker(state, message, src, process).value(self.tree))
        except (_Undefined, ArithmeticError, TypeError, ValueError, RecursionError):
            return False

    def describe(
        self,
        state: dict[str, Any],
        message: dict[str, Any] | None = None,
        src: str | None = None,
        process: str | None = None,
    ) -> str:
        """The values the condition read, for a person: ``"balance = 7"``, ``"src = p1, msg.amount = 55"``."""
        walker = _Walker(state, message, src, process)
        shown = []
        for name in self.names:
            try:
                value = walker.lookup(name)
            except _Undefined:
                value = "(missing)"
            shown.append(f"{name} = {value}")
        return ", ".join(shown)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "kind": self.kind, "names": list(self.names)}


def known_names(workload: str | Workload) -> list[str]:
    """Every name a condition may use with this workload, as a hint: state keys, then the rest."""
    wl = _workload(workload)
    return [*wl.state_keys, "process", "src", *(f"msg.{key}" for key in wl.payload_keys)]


def parse(text: str, workload: str | Workload | None = None) -> Condition:
    """Parse and check a condition; raise :class:`ConditionError` pointing at the first mistake.

    With a workload, every name must be one it knows (see :func:`known_names`); without
    one, any name is accepted and a name missing from a state makes the condition false.
    """
    if not isinstance(text, str):
        raise ConditionError("a condition must be text")
    if not text.strip():
        raise ConditionError("the condition is empty")
    if len(text) > MAX_LENGTH:
        raise ConditionError(f"a condition may be at most {MAX_LENGTH} characters long, this one has {len(text)}")
    for i, char in enumerate(text):
        if not char.isprintable():
            raise ConditionError("a condition is one line of printable characters", i + 1)
    wl = _workload(workload) if workload is not None else None
    # Python refuses leading spaces ("unexpected indent"); a person does not mean anything by them.
    lead = len(text) - len(text.lstrip())
    try:
        return _parse_line(text.strip(), wl)
    except ConditionError as refused:
        if lead and refused.column:
            raise ConditionError(refused.message, refused.column + lead) from None
        raise


def _parse_line(text: str, workload: Workload | None) -> Condition:
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(exc, text) from None
    except (ValueError, RecursionError, MemoryError):
        raise ConditionError("the condition cannot be read (is it nested too deeply?)") from None
    checker = _Checker(text, workload)
    if isinstance(tree.body, (ast.List, ast.Tuple)):
        # "balance < 5, tokens" is a tuple, and a non-empty tuple is always true.
        checker.fail(tree.body, "a condition is one expression, not a list; join parts with 'and' or 'or'")
    checker.check(tree.body, depth=1)
    kind = "event" if any(n == "src" or n.startswith("msg.") for n in checker.names) else "state"
    return Condition(text=text, kind=kind, names=tuple(checker.names), tree=tree.body)


# --- checking ---------------------------------------------------------------------------------

_BOOL_OPS = (ast.And, ast.Or)
_UNARY_OPS = (ast.Not, ast.USub, ast.UAdd)
_BIN_OPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Mod)
_COMPARE_OPS = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn)

# What a person may have tried, in their words, for the error message.
_REFUSED: dict[type[ast.AST], str] = {
    ast.Subscript: "indexing with [...]",
    ast.Call: "calling a function",
    ast.Lambda: "lambda",
    ast.IfExp: "'… if … else …'",
    ast.Dict: "a dict {…}",
    ast.Set: "a set {…}",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a comprehension",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.JoinedStr: "an f-string",
    ast.Starred: "'*'",
    ast.NamedExpr: "':='",
    ast.Slice: "a slice",
    ast.Pow: "'**'",
    ast.FloorDiv: "'//'",
    ast.MatMult: "'@'",
    ast.LShift: "'<<'",
    ast.RShift: "'>>'",
    ast.BitOr: "'|'",
    ast.BitXor: "'^'",
    ast.BitAnd: "'&'",
    ast.Invert: "'~'",
    ast.Is: "'is'",
    ast.IsNot: "'is not'",
}
_INSTEAD: dict[type[ast.AST], str] = {ast.Is: "write ==", ast.IsNot: "write !=", ast.FloorDiv: "write /"}


class _Checker:
    def __init__(self, text: str, workload: Workload | None) -> None:
        self.text = text
        self.workload = workload
        self.names: list[str] = []

    def check(self, node: ast.expr, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.fail(node, f"the condition is nested more than {MAX_DEPTH} deep; write it more simply")
        deeper = depth + 1
        if isinstance(node, ast.BoolOp) and isinstance(node.op, _BOOL_OPS):
            for value in node.values:
                self.check(value, deeper)
        elif isinstance(node, ast.UnaryOp):
            self.allowed(node.op, _UNARY_OPS, node.col_offset)
            self.check(node.operand, deeper)
        elif isinstance(node, ast.BinOp):
            self.allowed(node.op, _BIN_OPS, self.operator_offset(node.left, node.right))
            self.check(node.left, deeper)
            self.check(node.right, deeper)
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            for op, (before, after) in zip(node.ops, itertools.pairwise(operands), strict=True):
                self.allowed(op, _COMPARE_OPS, self.operator_offset(before, after))
            self.check(node.left, deeper)
            for comparator in node.comparators:
                self.check(comparator, deeper)
        elif isinstance(node, ast.Constant):
            self.constant(node)
        elif isinstance(node, (ast.List, ast.Tuple)):
            if len(node.elts) > MAX_LIST:
                self.fail(node, f"a list may hold at most {MAX_LIST} items")
            for item in node.elts:
                self.check(item, deeper)
        elif isinstance(node, ast.Name):
            self.name(node)
        elif isinstance(node, ast.Attribute):
            self.attribute(node)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
            if len(node.args) != 1 or node.keywords or isinstance(node.args[0], ast.Starred):
                self.fail(node, "len(…) takes exactly one value")
            self.check(node.args[0], deeper)
        elif isinstance(node, ast.Call):
            self.fail(node, "only len(…) can be called")
        else:
            self.refuse(node, node.col_offset)

    def constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, complex):
            self.fail(node, "complex numbers are not allowed")
        if value is None or value is Ellipsis or isinstance(value, bytes):
            self.fail(node, f"{value!r} is not allowed here; use numbers, strings, True or False")

    def name(self, node: ast.Name) -> None:
        self.plain(node, node.id)
        if node.id == "msg":
            self.fail(node, "msg is the message's payload: write msg.<key>, e.g. " + self.msg_example())
        if node.id == "len":
            self.fail(node, "len is used as len(…)")
        if self.workload is not None and node.id not in RESERVED and node.id not in self.workload.state_keys:
            self.fail(node, f"unknown name {node.id!r} (known: {', '.join(known_names(self.workload))})")
        self.remember(node.id)

    def attribute(self, node: ast.Attribute) -> None:
        if not (isinstance(node.value, ast.Name) and node.value.id == "msg"):
            self.fail(node, "only the message has fields: write msg.<key>, e.g. " + self.msg_example())
        self.plain(node, node.attr)
        if self.workload is not None and node.attr not in self.workload.payload_keys:
            known = ", ".join(f"msg.{k}" for k in self.workload.payload_keys)
            self.fail(node, f"a {self.workload.name} message has no key {node.attr!r} (known: {known})")
        self.remember(f"msg.{node.attr}")

    def plain(self, node: ast.expr, name: str) -> None:
        # No state or payload key looks like this; Python's internals all do. Reading one
        # could do no harm here, but refusing it says so at once.
        if name.startswith("__"):
            self.fail(node, f"{name!r}: names starting with '__' are not allowed")

    def msg_example(self) -> str:
        key = self.workload.payload_keys[0] if self.workload is not None else "amount"
        return f"msg.{key}"

    def remember(self, name: str) -> None:
        if name not in self.names:
            self.names.append(name)

    def allowed(self, op: ast.AST, whitelist: tuple[type[ast.AST], ...], offset: int) -> None:
        if not isinstance(op, whitelist):
            self.refuse(op, offset)

    def refuse(self, what: ast.AST, offset: int) -> None:
        words = _REFUSED.get(type(what), type(what).__name__)
        instead = _INSTEAD.get(type(what), f"conditions use {GRAMMAR}")
        raise ConditionError(f"{words} is not allowed; {instead}", _column(self.text, offset))

    def operator_offset(self, before: ast.expr, after: ast.expr) -> int:
        """Where the operator between two operands starts: past spaces and closing brackets."""
        raw = self.text.encode()
        offset = before.end_col_offset if before.end_col_offset is not None else before.col_offset
        while offset < after.col_offset and raw[offset : offset + 1] in (b" ", b")", b"\t"):
            offset += 1
        return offset

    def fail(self, node: ast.expr, message: str) -> None:
        raise ConditionError(message, _column(self.text, node.col_offset))


def _column(text: str, utf8_offset: int) -> int:
    """The 1-based character column of an ast node (whose ``col_offset`` counts UTF-8 bytes)."""
    return len(text.encode()[:utf8_offset].decode(errors="ignore")) + 1


def _syntax_error(exc: SyntaxError, text: str) -> ConditionError:
    """Python's own words for a syntax error (its ``offset`` counts characters), with a hint where we can."""
    message = (exc.msg or "invalid syntax").replace(" (detected at line 1)", "")
    end = len(text.rstrip()) + 1
    if not exc.offset or exc.offset > end:
        return ConditionError(f"{message}: the condition ends too soon", end)
    column = exc.offset
    at = text[column - 1 : column + 1]
    if at.startswith("=") and at != "==":
        message = "'=' is not a comparison: write '==' (or '<=', '>=', '!=')"
    return ConditionError(message, column)


def _workload(workload: str | Workload) -> Workload:
    if isinstance(workload, str):
        try:
            return WORKLOADS[workload]
        except KeyError:
            raise ConditionError(f"unknown workload {workload!r}") from None
    return workload


# --- evaluation -------------------------------------------------------------------------------


def _truth(value: Any) -> bool:
    if isinstance(value, (bool, int, float, str, list, tuple, dict)) or value is None:
        return bool(value)
    raise _Undefined


def _number(value: Any) -> int | float:
    if isinstance(value, (int, float)):  # bool is an int: True + 1 is 2, as in Python
        return value
    raise _Undefined


def _bounded(value: int | float) -> int | float:
    """Keep arithmetic on the numbers a state holds: no NaN, no integers that take long to multiply."""
    if isinstance(value, float) and math.isnan(value):
        raise _Undefined
    if isinstance(value, int) and abs(value).bit_length() > MAX_NUMBER_BITS:
        raise _Undefined
    return value


def _order(a: Any, b: Any) -> int:
    """-1, 0 or 1 for two numbers or two strings; anything else cannot be ordered and is undefined."""
    both_numbers = isinstance(a, (int, float)) and isinstance(b, (int, float))
    if not (both_numbers or (isinstance(a, str) and isinstance(b, str))):
        raise _Undefined
    return int(a > b) - int(a < b)


def _contains(item: Any, container: Any) -> bool:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise _Undefined
        return item in container
    if isinstance(container, (list, tuple, dict)):
        try:
            return item in container
        except TypeError:  # an unhashable item asked of a dict
            raise _Undefined from None
    raise _Undefined


_ARITHMETIC: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Mod: lambda a, b: a % b,
}

_COMPARISONS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: bool(a == b),
    ast.NotEq: lambda a, b: bool(a != b),
    ast.Lt: lambda a, b: _order(a, b) < 0,
    ast.LtE: lambda a, b: _order(a, b) <= 0,
    ast.Gt: lambda a, b: _order(a, b) > 0,
    ast.GtE: lambda a, b: _order(a, b) >= 0,
    ast.In: _contains,
    ast.NotIn: lambda a, b: not _contains(a, b),
}


class _Walker:
    """Interprets a checked tree. Only the node types the checker let through can occur."""

    def __init__(
        self, state: dict[str, Any], message: dict[str, Any] | None, src: str | None, process: str | None
    ) -> None:
        self.state = state
        self.message = message
        self.src = src
        self.process = process

    def lookup(self, name: str) -> Any:
        if name.startswith("msg."):
            if not isinstance(self.message, dict) or name[4:] not in self.message:
                raise _Undefined
            return self.message[name[4:]]
        if name == "src":
            if self.src is None:
                raise _Undefined
            return self.src
        if name == "process":
            if self.process is None:
                raise _Undefined
            return self.process
        if not isinstance(self.state, dict) or name not in self.state:
            raise _Undefined
        return self.state[name]

    def value(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return self.lookup(node.id)
        if isinstance(node, ast.Attribute):
            return self.lookup(f"msg.{node.attr}")
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.Not):
                return not _truth(self.value(node.operand))
            operand = _number(self.value(node.operand))
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(node, ast.BinOp):
            left, right = _number(self.value(node.left)), _number(self.value(node.right))
            return _bounded(_ARITHMETIC[type(node.op)](left, right))
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(item) for item in node.elts]
        if isinstance(node, ast.Call):  # len(…), the only call the checker lets through
            return self.length(self.value(node.args[0]))
        raise _Undefined

    def bool_op(self, node: ast.BoolOp) -> bool:
        # Short-circuits as Python does: what the first operand settles, the rest never reads.
        values: Iterable[ast.expr] = node.values
        if isinstance(node.op, ast.And):
            return all(_truth(self.value(v)) for v in values)
        return any(_truth(self.value(v)) for v in values)

    def compare(self, node: ast.Compare) -> bool:
        left = self.value(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.value(comparator)
            if not _COMPARISONS[type(op)](left, right):
                return False
            left = right
        return True

    @staticmethod
    def length(value: Any) -> int:
        if isinstance(value, (str, list, tuple, dict)):
            return len(value)
        raise _Undefined
