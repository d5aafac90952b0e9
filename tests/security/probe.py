"""One request of the permission matrix: a persona calls an endpoint with project A's ids; what
came back, and whether it changed any row or storage object, or showed A's data to an outsider."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.security.endpoints import Endpoint
from tests.security.world import A_MARKER, World

#: Personas outside project A: nothing of A may reach them.
OUTSIDERS = frozenset({"anonymous", "outside_annotator", "outside_reviewer", "outside_manager"})


@dataclass(frozen=True)
class Observation:
    status: int
    outcome: str  # "denied", "conflict", "invalid", "ok" or "error"
    changed: bool  # a row or a storage object appeared, went or moved
    leaked: bool  # project A's marker is in the body


def _outcome(status: int, location: str, body: bytes) -> str:
    if status == 503 and body.startswith(b"{") and b'"code"' in body:
        return "unavailable"  # a designed answer (engine.errors.Unavailable), not a crash
    if status >= 500:
        return "error"
    if status in (401, 403, 404, 405):
        return "denied"
    if status in (301, 302, 303) and "/login/?next=" in location:
        return "denied"
    if status in (409, 410, 423):
        return "conflict"
    if status in (400, 413, 415, 422):
        return "invalid"
    return "ok"


def _fingerprint_sql() -> str:
    ours: list[type[Model]] = [*apps.get_app_config("engine").get_models(), Token]
    quote = connection.ops.quote_name
    selects = []
    for n, model in enumerate(ours):
        pk, table = quote(str(model._meta.pk.column)), quote(model._meta.db_table)
        selects.append(f"SELECT {n}, COUNT(*), CAST(MAX({pk}) AS TEXT) FROM {table}")
    return " UNION ALL ".join(selects)


def fingerprint() -> tuple[tuple[Any, ...], tuple[str, ...]]:
    """Row count and largest id of every model of ours (one query), and the stored objects."""
    with connection.cursor() as cursor:
        cursor.execute(_fingerprint_sql())
        rows = tuple(sorted(tuple(row) for row in cursor.fetchall()))
    media = Path(settings.MEDIA_ROOT)
    files = sorted(
        str(Path(root, name).relative_to(media))
        for root, _dirs, names in os.walk(media)
        for name in names
    )
    return (rows, tuple(files))


def client_for(world: World, persona: str, endpoint: Endpoint) -> Client:
    user = world.persona(persona)
    if endpoint.key.startswith("api:"):
        api = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            api.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return api
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def call(
    world: World, persona: str, endpoint: Endpoint, method: str, path: str, *, watch: bool = True
) -> Observation:
    """Send the request inside a savepoint that is rolled back, so the world stays as built;
    ``watch``: compare the rows and stored objects before and after (else ``changed`` is False)."""
    client = client_for(world, persona, endpoint)
    client.raise_request_exception = False
    with transaction.atomic():
        before = fingerprint() if watch else None
        if endpoint.key.startswith("api:"):
            # Endpoints that take the project in the body or the query get project A's.
            body_json = json.dumps({"project": world.a.project.pk})
            path = f"{path}?project={world.a.project.pk}"
            response = client.generic(method, path, data=body_json, content_type="application/json")
        elif method == "GET":
            response = client.get(path)
        else:
            response = client.generic(
                method, path, data="", content_type="application/x-www-form-urlencoded"
            )
        changed = watch and fingerprint() != before
        transaction.set_rollback(True)
    body = b"" if getattr(response, "streaming", False) else response.content
    location = response.get("Location", "") or ""
    disposition = response.get("Content-Disposition", "") or ""
    leaked = persona in OUTSIDERS and any(
        A_MARKER in text for text in (body.decode("latin-1"), location, disposition)
    )
    return Observation(
        status=response.status_code,
        outcome=_outcome(response.status_code, location, body),
        changed=changed,
        leaked=leaked,
    )
