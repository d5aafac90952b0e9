"""``iso_datetime``: an ISO 8601 string (as the API payloads carry) back to a datetime, so
templates render it with ``console/_time.html`` (a local, human-readable time) instead of raw."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.dateparse import parse_datetime

register = template.Library()


@register.filter
def iso_datetime(value: object) -> datetime | object:
    """The datetime of an ISO string; anything else (a datetime, None) unchanged."""
    if isinstance(value, str):
        return parse_datetime(value) or value
    return value
