"""Demo mode (``DEMO_MODE=1``, what ``make run`` sets): a local trial on this machine only.

Demo mode may start without a ``SECRET_KEY`` (one is generated in ``DATA_DIR``) and with demo
accounts; in exchange it serves loopback clients only: ``ALLOWED_HOSTS`` may name nothing but
this machine, and a request from any other address is refused whatever the server binds to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

# "testserver" is the host name of Django's test client, not a network name.
LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]", "testserver")


def check_local_hosts(hosts: list[str]) -> list[str]:
    """Refuse an ``ALLOWED_HOSTS`` that names anything beyond this machine (demo mode)."""
    beyond = [host for host in hosts if host not in LOCAL_HOSTS]
    if beyond:
        raise ImproperlyConfigured(
            f"DEMO_MODE=1 serves this machine only, but ALLOWED_HOSTS names {', '.join(beyond)}: "
            f"use only {', '.join(LOCAL_HOSTS)}, or turn DEMO_MODE off and set SECRET_KEY"
        )
    return hosts


def is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1 from a dual-stack socket
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


class LoopbackOnlyMiddleware:
    """Demo mode: answer 403 to any client that is not on this machine."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not is_loopback(request.META.get("REMOTE_ADDR")):
            return HttpResponseForbidden(
                "This server runs in demo mode (DEMO_MODE=1) and serves this machine only.",
                content_type="text/plain",
            )
        return self.get_response(request)
