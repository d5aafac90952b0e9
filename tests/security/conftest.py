"""The security suite's figures (matrix size, fuzzed operations) printed at the end of the run,
visible with ``-q``."""

from __future__ import annotations

import pytest

#: Lines the tests of this folder add; printed once in the terminal summary.
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("security suite")
        for line in FIGURES:
            terminalreporter.write_line(line)
