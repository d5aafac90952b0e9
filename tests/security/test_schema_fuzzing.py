"""Schema fuzzing in CI (bounded): schemathesis against the live test server, every OpenAPI
operation as each role; 0 server errors and responses that conform to the schema. The longer run
is ``benchmarks/fuzz_api.py``."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token

from tests.security.conftest import FIGURES
from tests.security.fuzzing import fuzz
from tests.security.world import build_world

#: Generated requests per operation and role, and the wall-clock budget of the whole run.
MAX_EXAMPLES = 3
BUDGET_SECONDS = 30.0
ROLES = ("annotator", "reviewer", "manager", "outside_manager", "admin")


@pytest.mark.django_db(transaction=True)
def test_fuzzing_finds_no_server_error_and_no_schema_violation(live_server, settings) -> None:
    settings.TASK_SENDER = "tests.security.test_permission_matrix.drop_send"
    world = build_world()
    tokens = {}
    for role in ROLES:
        user = world.persona(role)
        assert user is not None
        tokens[role] = Token.objects.get_or_create(user=user)[0].key

    report = fuzz(live_server.url, tokens, max_examples=MAX_EXAMPLES, budget_seconds=BUDGET_SECONDS)

    FIGURES.append(
        f"schema fuzzing: {report.operations} operations x {len(ROLES)} roles, "
        f"{report.requests} requests, {report.server_errors} server errors "
        f"(+{report.designed_unavailable} documented 503s: no model configured), "
        f"{len(report.failures)} check failures, {len(report.skipped)} operation-roles "
        f"left out by the {BUDGET_SECONDS:.0f} s budget; "
        f"statuses {dict(sorted(report.statuses.items()))}"
    )
    assert report.operations > 0
    assert report.requests >= report.operations, "the budget let too few requests through"
    assert not report.failures, "\n".join(report.failures)
