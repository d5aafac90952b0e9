"""The production profile (``dataengine.settings_production``): ``check --deploy`` is silent,
HTTPS is enforced, the headers are sent and failed logins lock an account out, on the login page
and on ``/api/token/``. Each runs in a child process, since settings are per process."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = "engine.example.org"


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        # the browser tests' conftest sets DJANGO_ALLOW_ASYNC_UNSAFE for this whole process; a
        # deployment never has it (check --deploy reports it as async.E001)
        if k
        not in (
            "DATABASE_URL",
            "CELERY_BROKER_URL",
            "STORAGE_BACKEND",
            "DEMO_MODE",
            "DEBUG",
            "DJANGO_ALLOW_ASYNC_UNSAFE",
        )
    }
    env.update(
        {
            "PYTHONPATH": f"{REPO}:{REPO / 'platform'}",
            "DJANGO_SETTINGS_MODULE": "dataengine.settings_production",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "DATA_DIR": str(tmp_path),
            "ALLOWED_HOSTS": HOST,
        }
    )
    env.update(extra)
    return env


def _manage(tmp_path: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=_production_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_check_deploy_prints_no_warnings(tmp_path: Path) -> None:
    result = _manage(tmp_path, "check", "--deploy", "--fail-level", "WARNING")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "System check identified no issues" in output, output


def test_the_embedded_default_still_warns(tmp_path: Path) -> None:
    """The check is not silenced: the plain settings (no HTTPS settings) still get warnings."""
    result = _manage(tmp_path, "check", "--deploy", DJANGO_SETTINGS_MODULE="dataengine.settings")
    assert "security.W004" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"DEMO_MODE": "1"}, "DEMO_MODE"), ({"ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS")],
)
def test_refuses_a_demo_or_hostless_start(tmp_path: Path, extra: dict, message: str) -> None:
    result = _manage(tmp_path, "check", **extra)
    assert result.returncode != 0
    assert message in result.stderr


def test_https_headers_and_login_lockout(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "tests" / "security" / "_production_probe.py")],
        cwd=REPO,
        env=_production_env(tmp_path, AXES_FAILURE_LIMIT="5"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("PROBE ")]
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines, result.stdout
    seen = json.loads(lines[-1].removeprefix("PROBE "))

    assert seen["http_status"] == 301
    assert seen["http_location"] == f"https://{HOST}/login/"
    assert seen["login_status"] == 200
    assert "max-age=31536000" in seen["hsts"]
    assert "includeSubDomains" in seen["hsts"]
    assert "default-src 'self'" in seen["csp"]
    assert "script-src 'self'" in seen["csp"]
    assert "object-src 'none'" in seen["csp"]
    assert "frame-ancestors 'none'" in seen["csp"]
    assert seen["frame_options"] == "DENY"
    # /api/token/: four refusals, then the lockout, which holds even for the right password.
    assert seen["token_wrong"] == [400, 400, 400, 400, 429, 429]
    assert seen["token_right_after_lockout"] == 429
    assert "Too many failed logins" in seen["token_right_body"]
    # The login page (a form answers 200 with its errors) locks out the same way.
    assert seen["login_wrong"] == [200, 200, 200, 200, 429, 429]
    assert seen["login_right_after_lockout"] == 429
    # The lockout is per account and address, not for everyone behind that address.
    assert seen["token_other_user"] == 200
