"""The JavaScript side of the pages: its RLE fixtures are pycocotools' own, and its node tests pass.

``node --test`` runs the ``*.test.mjs`` files next to this one (the RLE codec, the frame cache and
the fetch wrapper of ``frontend/static/js/lib/``). Without node the test is skipped on a
developer's machine, but fails under CI, where ``make test`` installs Debian's ``nodejs``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.frontend.make_rle_fixtures import FIXTURES, build_cases, render

HERE = Path(__file__).parent
REPO_ROOT = HERE.parents[1]


def test_committed_fixtures_equal_pycocotools_output():
    # given the committed fixtures file, when the cases are encoded again with pycocotools
    expected = render(build_cases())
    # then the file is exactly what the generator writes (regenerate with make_rle_fixtures.py)
    assert FIXTURES.read_text(encoding="ascii") == expected
    assert FIXTURES.stat().st_size < 200_000


def test_node_unit_tests_pass():
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("node is missing under CI: `make test` installs Debian's nodejs")
        pytest.skip("node is not installed")
    # Files, not the folder: node 18 (Debian 12) and node 22 look for tests in a folder differently.
    files = sorted(str(p.relative_to(REPO_ROOT)) for p in HERE.glob("*.test.mjs"))
    assert len(files) >= 3
    result = subprocess.run(
        [node, "--test", *files],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
