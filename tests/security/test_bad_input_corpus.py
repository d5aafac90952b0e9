"""The bad-input corpus (tests/security/corpus.py) against every operation that takes a body or
an id, sent by a persona the policy allows (so the input, not the role, is what is judged): each
answer is a clear 4xx with the API's JSON error, and nothing is left behind (no row, no stored
object)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.db import transaction
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.security.conftest import FIGURES
from tests.security.corpus import BadRequest, bad_requests
from tests.security.endpoints import endpoint_for_schema_path, url_endpoints
from tests.security.policy import POLICY
from tests.security.probe import fingerprint
from tests.security.world import World, build_world, url_kwargs

pytestmark = pytest.mark.django_db

#: Who sends each bad request: the first of these the endpoint's policy allows.
SENDERS = ("annotator", "reviewer", "manager", "admin", "outside_manager")


#: Where the code refuses the input but keeps a trace, against DESIGN.md section 8 ("bad input
#: ... changes nothing"): (operation, bad input) -> finding. Expected to fail, strictly.
_FAILED_VIDEO_KEPT = (
    "a refused upload keeps a Video row with status failed (engine.videos.ingest.do_upload_video "
    "records the failure so the console can show it)"
)
KNOWN_FINDINGS: dict[tuple[str, str], str] = {
    ("POST /api/projects/{id}/videos/", f"file: {label}"): _FAILED_VIDEO_KEPT
    for label in (
        "a text file named .mp4",
        "a truncated video",
        "a PNG named .mp4",
        "an empty file",
    )
}
BOUNDARY = "corpus-boundary-5b1f"


def _multipart(fields: dict[str, Any]) -> tuple[bytes, str]:
    """A multipart body written by hand: Django's test client would drop a file name's path."""
    parts = []
    for key, value in fields.items():
        if isinstance(value, tuple):
            name, content = value
            head = (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"; '
                f'filename="{name}"\r\nContent-Type: video/mp4\r\n\r\n'
            )
            parts.append(head.encode() + content + b"\r\n")
        else:
            text = json.dumps(value) if isinstance(value, dict | list) else str(value)
            head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
            parts.append(head.encode() + text.encode() + b"\r\n")
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


@pytest.fixture
def world(settings) -> World:
    settings.TASK_SENDER = "tests.security.test_permission_matrix.drop_send"
    return build_world()


def _send(world: World, case: BadRequest, endpoints: list[Any]) -> tuple[str, Any, bool, bool]:
    """(persona, response, rows or stored objects changed, a stored key has '..')."""
    method = case.operation.split(" ", 1)[0]
    endpoint = endpoint_for_schema_path(endpoints, case.path_template)
    assert endpoint is not None, case.operation
    level = POLICY[(endpoint.key, method)]
    persona = next(p for p in SENDERS if p in level)
    kwargs = url_kwargs(world, endpoint.key)
    kwargs["id"] = kwargs["pk"]
    kwargs.update(case.path_params)
    path = re.sub(r"\{(\w+)\}", lambda m: str(kwargs[m.group(1)]), case.path_template)
    client = APIClient()
    client.raise_request_exception = False
    user = world.persona(persona)
    assert user is not None
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    with transaction.atomic():
        before = fingerprint()
        if isinstance(case.body, dict):
            raw: Any
            raw, content_type = _multipart(case.body)
            response = client.generic(method, path, data=raw, content_type=content_type)
        elif case.content_type:
            body: Any = case.body
            response = client.generic(method, path, data=body, content_type=case.content_type)
        else:
            response = client.generic(method, path)
        after = fingerprint()
        transaction.set_rollback(True)
    traversal = any(".." in key for key in after[1])
    return persona, response, after != before, traversal


def _judge(case: BadRequest, response: Any, changed: bool, traversal: bool) -> str | None:
    status = response.status_code
    if traversal:
        return f"a stored object's key contains '..' ({status})"
    if status >= 500:
        return f"server error {status}"
    if 200 <= status < 300:
        return None if case.text_only else f"accepted ({status})"
    if not 400 <= status < 500:
        return f"answered {status}"
    if not response.get("Content-Type", "").startswith("application/json"):
        return f"{status} without the API's JSON error ({response.get('Content-Type')})"
    if changed:
        return f"{status}, but a row or stored object was left behind"
    return None


def test_bad_input_corpus(world: World, small_clip: Path) -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    cases = bad_requests(schema, small_clip.read_bytes())
    endpoints = url_endpoints()
    problems = []
    seen_findings: set[tuple[str, str]] = set()
    statuses: dict[int, int] = {}
    for case in cases:
        persona, response, changed, traversal = _send(world, case, endpoints)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        wrong = _judge(case, response, changed, traversal)
        if wrong and (case.operation, case.what) in KNOWN_FINDINGS:
            seen_findings.add((case.operation, case.what))
        elif wrong:
            detail = b"" if getattr(response, "streaming", False) else response.content[:160]
            problems.append(f"{case.operation} {case.what} as {persona}: {wrong} {detail!r}")
    operations = len({case.operation for case in cases})
    FIGURES.append(
        f"bad-input corpus: {len(cases)} bad requests on {operations} operations; "
        f"statuses {dict(sorted(statuses.items()))}; {len(problems)} problems, "
        f"{len(seen_findings)} known findings"
    )
    assert not problems, "\n".join(problems)
    fixed = sorted(f"{op} {what}" for op, what in KNOWN_FINDINGS if (op, what) not in seen_findings)
    assert not fixed, "known findings no longer seen (remove them): " + ", ".join(fixed)
