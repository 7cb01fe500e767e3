"""JSON from outside (a request body, an uploaded file, a file on the command line, a
socket's command) read so that no input can crash or exhaust the reader.

``json.loads`` recurses once per nesting level, so a document nested some thousands deep
raises ``RecursionError`` (a 500, a traceback); it turns a 5,000-digit number into an
``int`` Python then refuses to print, and accepts ``NaN`` and ``Infinity``, which no
other JSON reader does. :func:`loads` checks the nesting without recursing before it
parses, and refuses all of these, and bytes that are not UTF-8, with a
:class:`JSONInputError` whose message says what is wrong, for the caller to show.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64  # nesting levels: a topology needs fewer than ten
MAX_NUMBER_DIGITS = 40  # characters of one number: beyond any float or 64-bit integer

# A JSON string (quotes, escapes) — blanked out so brackets inside strings are not counted.
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


class JSONInputError(ValueError):
    """JSON that was refused, with the reason in words."""


def nesting_depth(text: str) -> int:
    """How deep ``text``'s arrays and objects nest (without parsing it, nor recursing)."""
    depth = deepest = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        if bracket.group() in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _number(text: str) -> str:
    if len(text) > MAX_NUMBER_DIGITS:
        raise JSONInputError(f"a number has {len(text)} characters (at most {MAX_NUMBER_DIGITS})")
    return text


def _int(text: str) -> int:
    return int(_number(text))


def _float(text: str) -> float:
    value = float(_number(text))
    if not math.isfinite(value):  # 1e400
        raise JSONInputError(f"the number {text} is too large")
    return value


def _constant(name: str) -> Any:
    raise JSONInputError(f"{name} is not a JSON number")


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` (bytes must be UTF-8) or raise :class:`JSONInputError`."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"not UTF-8 text (byte {exc.start} is not valid UTF-8)") from None
    else:
        text = data
    depth = nesting_depth(text)
    if depth > max_depth:
        raise JSONInputError(f"nested {depth} levels deep (at most {max_depth})")
    try:
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except JSONInputError:
        raise
    except ValueError as exc:  # json.JSONDecodeError, with the line and column
        raise JSONInputError(f"not valid JSON: {exc}") from None
