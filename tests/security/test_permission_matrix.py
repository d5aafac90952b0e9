"""The permission matrix: every endpoint of the URLconf and of the OpenAPI schema x every persona
(anonymous; annotator, reviewer and manager of project A; each role in project B only; site
admin), with project A's ids in the URL. Outcomes must match :mod:`tests.security.policy`: no 5xx,
nothing of A shown or changed from outside A, no write by a role the policy does not allow."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.security.conftest import FIGURES
from tests.security.endpoints import (
    Endpoint,
    endpoint_for_schema_path,
    schema_operations,
    url_endpoints,
)
from tests.security.policy import KNOWN_FINDINGS, POLICY, Level
from tests.security.probe import OUTSIDERS, Observation, call
from tests.security.world import PERSONAS, World, build_world, url_kwargs

pytestmark = pytest.mark.django_db


def drop_send(name: str, args: list[Any], queue: str) -> None:
    """TASK_SENDER of the matrix: no message leaves (nothing commits anyway)."""


@pytest.fixture
def world(settings) -> World:
    settings.TASK_SENDER = "tests.security.test_permission_matrix.drop_send"
    return build_world()


def _level(endpoint: Endpoint, method: str) -> tuple[Level | None, bool]:
    """The declared level, and whether ``method`` is the one it was declared for. A plain view
    declares the method it serves; its other one must refuse the same personas."""
    if (endpoint.key, method) in POLICY:
        return POLICY[(endpoint.key, method)], True
    if not endpoint.declared:
        other = next(
            (POLICY[(endpoint.key, m)] for m in endpoint.methods if (endpoint.key, m) in POLICY),
            None,
        )
        return other, False
    return None, False


def test_every_endpoint_and_operation_has_a_policy() -> None:
    endpoints = url_endpoints()
    missing = sorted(
        f"{e.key} {m}" for e in endpoints for m in e.methods if _level(e, m)[0] is None
    )
    unmapped = []
    for path, method in schema_operations():
        endpoint = endpoint_for_schema_path(endpoints, path)
        if endpoint is None or (endpoint.key, method) not in POLICY:
            unmapped.append(f"{method} {path}")
    stale = sorted(
        f"{key} {method}"
        for key, method in POLICY
        if not any(e.key == key and method in e.methods for e in endpoints)
    )
    assert not missing, "no policy for: " + ", ".join(missing) + " (add them to policy.py)"
    assert not unmapped, "schema operations without a policy: " + ", ".join(unmapped)
    assert not stale, "policy entries of endpoints that are gone: " + ", ".join(stale)


def _judge(persona: str, level: Level, declared: bool, seen: Observation) -> str | None:
    """What is wrong with this observation under the policy, or None."""
    if seen.outcome == "error":
        return f"server error {seen.status}"
    if seen.leaked:
        return f"project A's data shown to {persona} ({seen.status})"
    if persona in level:
        if declared and seen.outcome == "denied":
            return f"refused an allowed persona ({seen.status})"
        return None
    if seen.changed:
        return f"a row or stored object changed ({seen.status})"
    if persona in OUTSIDERS:
        return None if seen.outcome == "denied" else f"not refused ({seen.status})"
    # A member whom the policy does not allow: refused, or the body/state checked first.
    if seen.outcome in ("denied", "invalid", "conflict"):
        return None
    return f"not refused ({seen.status})"


def test_permission_matrix(world: World, settings, tmp_path: Path) -> None:
    media = Path(settings.MEDIA_ROOT)
    backup = tmp_path / "media-backup"
    shutil.copytree(media, backup)
    endpoints = url_endpoints()
    problems: list[str] = []
    expected_failures: dict[tuple[str, str, str], str] = {}
    requests = 0
    for endpoint in endpoints:
        path = endpoint.path(url_kwargs(world, endpoint.key))
        for method in endpoint.methods:
            level, declared = _level(endpoint, method)
            assert level is not None, f"{endpoint.key} {method} has no policy"
            for persona in PERSONAS:
                # Only a persona the policy refuses must leave everything as it was.
                seen = call(world, persona, endpoint, method, path, watch=persona not in level)
                requests += 1
                wrong = _judge(persona, level, declared, seen)
                where = (endpoint.key, method, persona)
                if wrong and where in KNOWN_FINDINGS:
                    expected_failures[where] = wrong
                elif wrong:
                    problems.append(f"{method} {path} [{endpoint.key}] as {persona}: {wrong}")
        # Allowed writes may have removed stored objects: put the world's media back.
        shutil.rmtree(media)
        shutil.copytree(backup, media)
    operations = len(schema_operations())
    FIGURES.append(
        f"permission matrix: {len(endpoints)} URL patterns ({operations} OpenAPI operations) x "
        f"{len(PERSONAS)} personas = {requests} requests; {len(problems)} unexpected, "
        f"{len(expected_failures)} known findings"
    )
    fixed = sorted(
        f"{k} {m} {p}" for k, m, p in KNOWN_FINDINGS if (k, m, p) not in expected_failures
    )
    assert not problems, "\n".join(problems)
    assert not fixed, (
        "known findings no longer seen (remove them from KNOWN_FINDINGS): " + ", ".join(fixed)
    )
