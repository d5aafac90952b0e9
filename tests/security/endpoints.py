"""Every endpoint of the platform, read from the URLconf and the OpenAPI schema (never listed by
hand), so that an endpoint added tomorrow is in the permission matrix and the fuzzing at once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver

#: Methods a plain Django view may answer; each one it does not serve must refuse everyone.
PLAIN_VIEW_METHODS = ("GET", "POST")
_DRF_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Endpoint:
    key: str  # "api:<url name>" or "web:<url name>" ("admin" for the admin site)
    route: str  # the pattern as written, e.g. "api/masklets/<int:masklet_id>/draft/"
    methods: tuple[str, ...]  # what the view declares; PLAIN_VIEW_METHODS for plain views
    declared: bool  # the methods come from the view (DRF, class-based views)

    def path(self, kwargs: dict[str, Any]) -> str:
        """The URL with each kwarg of the route filled from ``kwargs``."""

        def fill(match: re.Match[str]) -> str:
            return str(kwargs[match.group("name")])

        filled = re.sub(r"\(\?P<(?P<name>\w+)>[^)]*\)", fill, self.route)
        filled = re.sub(r"<(?:\w+:)?(?P<name>\w+)>", fill, filled)
        return "/" + filled.replace("^", "").replace("$", "")


def _methods(callback: Any) -> tuple[tuple[str, ...], bool]:
    actions = getattr(callback, "actions", None)
    if actions:  # a DRF viewset route (DRF adds "head" to it on the first request)
        return tuple(m.upper() for m in actions if m in _DRF_METHODS), True
    view_class = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    if view_class is not None:
        names = [m for m in _DRF_METHODS if m in view_class.http_method_names]
        return tuple(m.upper() for m in names if hasattr(view_class, m)), True
    return PLAIN_VIEW_METHODS, False


def _walk(patterns: list[Any], prefix: str) -> Iterator[tuple[str, URLPattern]]:
    for item in patterns:
        route = prefix + str(item.pattern)
        if isinstance(item, URLResolver):
            if route == "admin/":
                continue  # the admin site: one entry of its own (see url_endpoints)
            yield from _walk(item.url_patterns, route)
        else:
            yield route, item


def _is_format_alias(route: str) -> bool:
    """DRF's ``.json`` suffix routes repeat the route before them."""
    return "(?P<format>" in route or "<drf_format_suffix:format>" in route


def url_endpoints() -> list[Endpoint]:
    """One endpoint per URL pattern of the URLconf (format-suffix aliases left out)."""
    found: dict[str, Endpoint] = {
        "admin": Endpoint(key="admin", route="admin/", methods=("GET",), declared=True)
    }
    for route, pattern in _walk(get_resolver().url_patterns, ""):
        if _is_format_alias(route):
            continue
        side = "api" if route.startswith("api/") else "web"
        key = f"{side}:{pattern.name or route}"
        if key in found:
            raise AssertionError(f"two URL patterns are both {key!r}: name them apart")
        methods, declared = _methods(pattern.callback)
        found[key] = Endpoint(key=key, route=route, methods=methods, declared=declared)
    return list(found.values())


def schema_operations() -> list[tuple[str, str]]:
    """``(path, METHOD)`` of every operation in the OpenAPI schema (drf-spectacular)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method.upper())
        for path, item in schema["paths"].items()
        for method in item
        if method in _DRF_METHODS
    ]


def endpoint_for_schema_path(endpoints: list[Endpoint], path: str) -> Endpoint | None:
    """The URL pattern that serves the schema's ``path`` ("/api/videos/{video_id}/...")."""
    from django.urls import Resolver404, resolve

    concrete = re.sub(r"\{\w+\}", "1", path)
    try:
        match = resolve(concrete)
    except Resolver404:
        return None
    side = "api" if concrete.startswith("/api/") else "web"
    key = f"{side}:{match.url_name or match.route}"
    return next((e for e in endpoints if e.key == key), None)
