"""Checks for the numbers and strings that annotation files carry.

JSON from outside may hold ``NaN``, ``Infinity``, ``1e400``, negative sizes, floats where whole
numbers belong or NUL characters; each would otherwise surface later as an ``OverflowError``, a
database error in a worker, or a row PostgreSQL refuses. Every check raises ``ValueError`` naming
the field, which the import readers turn into a 400.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Any

#: Object ids, frame indices and counts are stored in 32-bit integer columns.
MAX_INT32 = 2**31 - 1


def whole(value: Any, name: str, *, minimum: int = 0, maximum: int = MAX_INT32) -> int:
    """A whole number in ``[minimum, maximum]``; ``483.0`` is accepted as 483 (SA-V writes
    counts and sizes as floats)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not (math.isfinite(value) and value.is_integer()))
        or not minimum <= value <= maximum
    ):
        raise ValueError(
            f"{name} must be a whole number from {minimum} to {maximum}, not {_shown(value)}"
        )
    return int(value)


def finite(value: Any, name: str, *, minimum: float = 0.0, maximum: float = math.inf) -> float:
    """A finite number in ``[minimum, maximum]`` (never NaN or infinite)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not minimum <= value <= maximum
    ):
        raise ValueError(
            f"{name} must be a finite number from {minimum:g} to {maximum:g}, not {_shown(value)}"
        )
    return float(value)


def text(value: Any, name: str, *, max_chars: int = 255) -> str:
    """A string of at most ``max_chars`` characters without NUL (PostgreSQL refuses NUL)."""
    if not isinstance(value, str) or len(value) > max_chars or "\x00" in value:
        raise ValueError(
            f"{name} must be text of at most {max_chars} characters without NUL, "
            f"not {_shown(value)}"
        )
    return value


def _shown(value: Any) -> str:
    """The offending value, short: numbers and short strings as they are, else the type."""
    if isinstance(value, float) or (isinstance(value, int) and abs(value) < 2**64):
        return repr(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return "a very large number"
    if isinstance(value, str):
        return repr(value[:40])
    return f"a JSON {type(value).__name__}"


def read_json(source: str | Path | IO[str]) -> Any:
    """The JSON document in a file (by path) or an open text stream."""
    if isinstance(source, str | Path):
        with open(source, encoding="utf-8") as fh:
            return json.load(fh)
    return json.load(source)
