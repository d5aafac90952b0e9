"""Requests during an outage of a service the web needs (PostgreSQL, the broker) get a 503.

Database connection errors (``django.db.OperationalError``, ``InterfaceError``) and broker or
result-backend connection errors become a 503 with ``Retry-After``: JSON ``{"detail", "code":
"unavailable"}`` for the API and for clients that ask for JSON, a plain page otherwise. Nothing
here renders a template or reads a row (the database may be what is gone). Anything else stays
Django's 500.

Two places catch them: :class:`ServiceOutageMiddleware` sees every exception a view raises
(DRF's ``APIView`` re-raises what its handler does not know); :func:`server_error`
(``handler500``) the rest, e.g. a middleware's. Under ASGI Django builds the 500 response in
another thread, where the exception is no longer at hand, so ``server_error`` then asks the
database itself: a 500 while it cannot be reached is a 503.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

logger = logging.getLogger(__name__)

#: Seconds a client should wait before trying again (the ``Retry-After`` header).
RETRY_AFTER_SECONDS = 5


def _service_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [OperationalError, InterfaceError]
    try:  # the broker (kombu wraps connection errors in its OperationalError)
        from kombu.exceptions import OperationalError as BrokerError

        types.append(BrokerError)
    except ImportError:  # pragma: no cover - kombu comes with Celery
        pass
    try:  # the Redis result backend
        from redis.exceptions import ConnectionError as RedisConnectionError
        from redis.exceptions import TimeoutError as RedisTimeoutError

        types += [RedisConnectionError, RedisTimeoutError]
    except ImportError:  # pragma: no cover
        pass
    return tuple(types)


def service_unavailable_cause(exc: BaseException | None) -> str | None:
    """Which service `exc` (or an exception it was raised from) says is unreachable, or None
    when it is not a lost service."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (OperationalError, InterfaceError)):
            return "the database"
        if isinstance(exc, _service_error_types()):
            return "the task broker"
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def unavailable_response(request: HttpRequest, service: str) -> HttpResponse:
    detail = f"{service} is unavailable for a moment; try again in a few seconds"
    response: HttpResponse
    if request.path.startswith("/api/") or _wants_json(request):
        response = JsonResponse({"detail": detail, "code": "unavailable"}, status=503)
    else:
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>Unavailable</title></head>"
            f"<body><h1>Unavailable</h1><p>{detail}.</p></body></html>"
        )
        response = HttpResponse(page, status=503, content_type="text/html; charset=utf-8")
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class ServiceOutageMiddleware:
    """A view's exception from a lost service becomes the 503 (:func:`unavailable_response`)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        service = service_unavailable_cause(exc)
        if service is None:
            return None
        logger.warning("%s %s: %s unavailable: %r", request.method, request.path, service, exc)
        return unavailable_response(request, service)


def _database_unreachable() -> bool:
    try:
        if connection.connection is not None and not connection.is_usable():
            return True
        connection.ensure_connection()
    except (OperationalError, InterfaceError):
        return True
    except Exception:  # not an outage this function can tell
        return False
    return False


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a 503 for a lost service (see the module docstring), else Django's own
    500 page."""
    service = service_unavailable_cause(sys.exc_info()[1])
    if service is None and sys.exc_info()[1] is None and _database_unreachable():
        service = "the database"
    if service is not None:
        return unavailable_response(request, service)
    response: HttpResponse = defaults.server_error(request)
    return response


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept
