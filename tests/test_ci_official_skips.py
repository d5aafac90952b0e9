"""Under CI a skipped ``official`` parity test is a failure (the hook in ``tests/conftest.py``).

Each case runs a tiny test file in a child pytest that loads ``tests.conftest`` as a plugin.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests._services import REPO

TINY_TESTS = """
import pytest

@pytest.mark.official
def test_official_skipped():
    pytest.skip("sam2 is not installed")

@pytest.mark.official
@pytest.mark.skipif(True, reason="no checkpoint")
def test_official_skipped_by_marker():
    pass

@pytest.mark.official
def test_official_passes():
    pass

def test_other_skipped():
    pytest.skip("not parity")

@pytest.mark.official
@pytest.mark.xfail(reason="known gap", strict=True)
def test_official_xfail():
    raise AssertionError
"""


def _run(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_tiny.py").write_text(TINY_TESTS)
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "DJANGO_SETTINGS_MODULE")}
    if ci is not None:
        env["CI"] = ci
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "platform")])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rA", "-p", "no:django", "-p", "no:cacheprovider"]
        + ["-p", "tests.conftest", "-W", "ignore::pytest.PytestUnknownMarkWarning"]
        + ["test_tiny.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("ci", ["true", "1"])
def test_skipped_official_test_fails_under_ci(tmp_path: Path, ci: str) -> None:
    result = _run(tmp_path, ci)
    out = result.stdout
    assert result.returncode == 1, out
    assert "FAILED test_tiny.py::test_official_skipped " in out
    # a skip in setup (skipif) becomes an error of the test: a failure all the same
    assert "ERROR test_tiny.py::test_official_skipped_by_marker" in out
    assert "may not skip under CI: Skipped: no checkpoint" in out
    assert "an official parity test may not skip under CI: Skipped: sam2 is not installed" in out
    assert "PASSED test_tiny.py::test_official_passes" in out
    assert "SKIPPED [1] test_tiny.py:18: not parity" in out
    assert "XFAIL test_tiny.py::test_official_xfail" in out
    assert "1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error" in out


@pytest.mark.parametrize("ci", [None, "false", ""])
def test_skipped_official_test_stays_skipped_elsewhere(tmp_path: Path, ci: str | None) -> None:
    result = _run(tmp_path, ci)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 3 skipped, 1 xfailed" in result.stdout
