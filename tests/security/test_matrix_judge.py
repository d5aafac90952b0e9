"""The matrix's verdicts on made-up observations: what it must flag (so it can fail)."""

from __future__ import annotations

import pytest

from tests.security.policy import MANAGER, PUBLIC
from tests.security.probe import Observation
from tests.security.test_permission_matrix import _judge


def seen(status: int, outcome: str, *, changed: bool = False, leaked: bool = False) -> Observation:
    return Observation(status=status, outcome=outcome, changed=changed, leaked=leaked)


@pytest.mark.parametrize(
    ("persona", "observation", "flagged"),
    [
        ("manager", seen(200, "ok"), False),
        ("manager", seen(400, "invalid"), False),
        ("manager", seen(403, "denied"), True),  # an allowed persona refused
        ("manager", seen(500, "error"), True),  # a crash, whoever calls
        ("outside_manager", seen(404, "denied"), False),
        ("outside_manager", seen(200, "ok"), True),  # BOLA: another project's manager reads A
        ("outside_manager", seen(400, "invalid"), True),  # not refused outright from outside
        ("anonymous", seen(302, "denied"), False),
        ("annotator", seen(403, "denied"), False),
        ("annotator", seen(409, "conflict"), False),  # a member, state checked before the role
        ("annotator", seen(201, "ok"), True),  # a write by a role the policy refuses
        ("annotator", seen(403, "denied", changed=True), True),  # refused, but a row changed
        ("outside_annotator", seen(404, "denied", leaked=True), True),  # A's data in the body
    ],
)
def test_judge_flags_what_breaks_the_policy(
    persona: str, observation: Observation, flagged: bool
) -> None:
    assert (_judge(persona, MANAGER, True, observation) is not None) is flagged


def test_a_plain_views_other_method_only_checks_refusals() -> None:
    # GET on a POST-only page answers 405 to an allowed persona: not a refusal of the policy
    assert _judge("manager", MANAGER, False, seen(405, "denied")) is None
    assert _judge("outside_manager", MANAGER, False, seen(200, "ok")) is not None


def test_public_endpoints_may_answer_anyone() -> None:
    assert _judge("anonymous", PUBLIC, True, seen(200, "ok")) is None
    assert _judge("anonymous", PUBLIC, True, seen(500, "error")) is not None
