"""The signed-in user of a page request (pages sit behind ``login_required``)."""

from __future__ import annotations

from django.http import HttpRequest

from engine.errors import PermissionDenied
from engine.models import User


def page_user(request: HttpRequest) -> User:
    if not isinstance(request.user, User):
        raise PermissionDenied("Log in first")
    return request.user
