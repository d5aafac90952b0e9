"""Reading JSON from outside with a bound on nesting.

``json.loads("[" * 100_000)`` raises ``RecursionError``, which no caller expects (a 500), and a
document nested a few hundred deep parses but then overflows the stack of whatever walks it
(``repr``, ``json.dumps`` when it is stored, a serializer). No annotation format nests deeper than
a handful of levels, so anything past :data:`MAX_JSON_DEPTH` is refused up front.
"""

from __future__ import annotations

import json
from typing import IO, Any

from engine.errors import InvalidInput

#: Deepest nesting accepted; SA-V and COCO files nest 4 levels, API bodies fewer.
MAX_JSON_DEPTH = 32


class JsonTooDeep(InvalidInput):
    """JSON nested deeper than :data:`MAX_JSON_DEPTH` (HTTP 400)."""


def check_json_depth(value: Any, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Raise :class:`JsonTooDeep` when lists / objects in ``value`` nest deeper than ``max_depth``.

    Iterative (an explicit stack), so it cannot itself run out of stack.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if depth > max_depth:
            raise JsonTooDeep(f"the JSON nests deeper than {max_depth} levels")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))


def load_json(stream: IO[str], max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.load`` that refuses deep nesting with :class:`JsonTooDeep`.

    Other malformed input raises ``ValueError`` as ``json.load`` does (``JSONDecodeError``, or a
    number with more digits than Python converts).
    """
    try:
        value = json.load(stream)
    except RecursionError:
        raise JsonTooDeep(f"the JSON nests deeper than {max_depth} levels") from None
    check_json_depth(value, max_depth)
    return value
