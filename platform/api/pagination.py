"""List pagination whose ``limit`` and ``offset`` cannot overflow the database.

DRF's ``LimitOffsetPagination`` passes ``?limit=99999999999999999999`` straight into SQL
(``OverflowError``: a 500 on SQLite, an out-of-range error on PostgreSQL) and silently ignores
``limit=abc`` or ``offset=-1``. Here malformed values are a 400 and large ones are clamped.
"""

from __future__ import annotations

import re

from rest_framework.exceptions import ParseError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

_DIGITS = re.compile(r"[0-9]+")  # ASCII only: int() also takes "٣" and " 7 "
MAX_OFFSET = 2**31 - 1


def _whole_param(request: Request, name: str, minimum: int, maximum: int) -> int | None:
    """Query parameter ``name`` as an int clamped to ``maximum``; ``None`` when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return None
    problem = ParseError(f"'{name}' must be a whole number of at least {minimum}")
    if not _DIGITS.fullmatch(raw):
        raise problem
    digits = raw.lstrip("0") or "0"
    # More than 12 digits is past any maximum: clamp without converting a huge string.
    value = maximum if len(digits) > 12 else int(digits)
    if value < minimum:
        raise problem
    return min(value, maximum)


MAX_LIMIT = 1000


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    max_limit = MAX_LIMIT

    def get_limit(self, request: Request) -> int | None:
        limit = _whole_param(request, self.limit_query_param, 1, MAX_LIMIT)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        return _whole_param(request, self.offset_query_param, 0, MAX_OFFSET) or 0
