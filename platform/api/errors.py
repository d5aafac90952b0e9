"""API error responses: always ``{"detail": "...", "code": "..."}`` with a 4xx status.

This is the one place where the domain's errors (``engine.errors``) become HTTP statuses for the
REST API; views let them propagate.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from engine import errors

#: Status code per domain error class; the first class the error is an instance of wins.
STATUS_FOR_ERROR: tuple[tuple[type[errors.EngineError], int], ...] = (
    (errors.NotFound, status.HTTP_404_NOT_FOUND),
    (errors.PermissionDenied, status.HTTP_403_FORBIDDEN),
    (errors.Conflict, status.HTTP_409_CONFLICT),
    (errors.Gone, status.HTTP_410_GONE),
    (errors.Unavailable, status.HTTP_503_SERVICE_UNAVAILABLE),
    (errors.InvalidInput, status.HTTP_400_BAD_REQUEST),
)


def status_for(exc: errors.EngineError) -> int:
    for cls, code in STATUS_FOR_ERROR:
        if isinstance(exc, cls):
            return code
    return status.HTTP_400_BAD_REQUEST


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, errors.EngineError):
        return Response({"detail": str(exc), "code": exc.code}, status=status_for(exc))
    if isinstance(exc, Http404):
        return Response({"detail": str(exc) or "Not found."}, status=status.HTTP_404_NOT_FOUND)
    if isinstance(exc, RequestDataTooBig):
        # Django would answer its HTML 400 page: a JSON client gets a JSON 413.
        return Response(
            {"detail": "The request body is too large", "code": "too_large"},
            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        )
    return drf_exception_handler(exc, context)
