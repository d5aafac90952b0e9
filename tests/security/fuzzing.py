"""Schema fuzzing of a running server with schemathesis: every operation of its OpenAPI schema,
as each role, with generated (valid and invalid) requests; no 5xx, responses as the schema says.

Shared by the bounded CI test (test_schema_fuzzing.py) and the longer benchmark
(benchmarks/fuzz_api.py)."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance


def _documented_unavailable(schema: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of the operations whose schema documents a 503 (no model configured)."""
    return {
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "503" in operation.get("responses", {})
    }


@dataclass
class FuzzReport:
    operations: int = 0
    requests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # operations the time budget left out

    designed_unavailable: int = 0  # documented 503s with the API's JSON error

    @property
    def server_errors(self) -> int:
        """5xx answers other than a documented 503."""
        crashes = sum(n for status, n in self.statuses.items() if status >= 500)
        return crashes - self.designed_unavailable


def load_schema(base_url: str) -> dict[str, Any]:
    response = requests.get(f"{base_url}/api/schema/", params={"format": "json"}, timeout=60)
    response.raise_for_status()
    return response.json()


def fuzz(
    base_url: str,
    tokens: dict[str, str],
    *,
    max_examples: int,
    budget_seconds: float,
) -> FuzzReport:
    """Fuzz every operation of the server's schema as every role of ``tokens`` (role -> API
    token), ``max_examples`` generated requests per operation and role, until ``budget_seconds``
    is spent (operations not reached are listed in ``skipped``)."""
    raw = load_schema(base_url)
    schema = schemathesis.openapi.from_dict(raw)
    unavailable = _documented_unavailable(raw)
    schema.config.update(base_url=base_url)
    report = FuzzReport()
    session = requests.Session()
    stop_at = time.monotonic() + budget_seconds
    operations = []
    for result in schema.get_all_operations():
        if isinstance(result, Ok):
            operations.append(result.ok())
        else:  # an operation schemathesis cannot read is a failure of the schema itself
            report.failures.append(f"unreadable operation in the schema: {result.err()}")
    report.operations = len(operations)
    roles = list(tokens)
    # Every operation once (roles taken in turn) before any operation a second time, so a short
    # budget still reaches every operation.
    pairs = [
        (operation, roles[(i + shift) % len(roles)])
        for shift in range(len(roles))
        for i, operation in enumerate(operations)
    ]
    for operation, role in pairs:
        label = f"{operation.method.upper()} {operation.path} as {role}"
        if time.monotonic() > stop_at:
            report.skipped.append(label)
            continue
        may_503 = (operation.method.upper(), operation.path) in unavailable
        _fuzz_one(operation, label, tokens[role], session, report, max_examples, may_503)
    return report


def _fuzz_one(
    operation: Any,
    label: str,
    token: str,
    session: requests.Session,
    report: FuzzReport,
    max_examples: int,
    may_503: bool,
) -> None:
    headers = {"Authorization": f"Token {token}"}
    seen: set[str] = set()

    @hypothesis_settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the budget is for breadth
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def run(case: Any) -> None:
        response = case.call(session=session, headers=headers, timeout=30)
        report.requests += 1
        report.statuses[response.status_code] += 1
        if may_503 and response.status_code == 503 and '"code"' in response.text:
            # documented (no SAM 2 model configured on this server): not a crash
            report.designed_unavailable += 1
            return
        try:
            case.validate_response(
                response,
                checks=[not_a_server_error, response_schema_conformance],
                headers=headers,
            )
        except (Exception, BaseExceptionGroup) as exc:  # a failed check: record it, go on
            titles = [
                getattr(f, "title", type(f).__name__) for f in getattr(exc, "exceptions", [exc])
            ]
            message = f"{label}: {'; '.join(titles)}"
            if message not in seen:
                seen.add(message)
                detail = " ".join(str(exc).split())[:400]
                report.failures.append(
                    f"{message} (request: {case.method} {case.formatted_path} "
                    f"body={str(case.body)[:200]!r} query={case.query!r}; {detail})"
                )

    try:
        run()
    except Unsatisfiable:
        report.skipped.append(label + " (no valid example)")
