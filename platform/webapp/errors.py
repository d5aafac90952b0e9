"""Pages: the domain's errors (``engine.errors``) become the matching error page.

One middleware does for pages what ``api.errors`` does for the API, so views let domain errors
propagate instead of catching them one by one. A view that wants to show the error inside its own
page (a form re-rendered with the message) still catches it itself.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from api.errors import status_for
from engine import errors

_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    410: "Gone",
    503: "Unavailable",
}


class DomainErrorMiddleware:
    """Render ``engine.errors.EngineError`` as an error page (or JSON for fetch requests)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, errors.EngineError):
            return None
        code = status_for(exc)
        if _wants_json(request):
            return JsonResponse({"detail": str(exc), "code": exc.code}, status=code)
        context = {"title": _TITLES.get(code, "Error"), "message": str(exc)}
        return render(request, "error.html", context, status=code)


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept
