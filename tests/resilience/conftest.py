"""Fixtures of the resilience suites (defined in resilience_rig.py: a uniquely named module, since test files
cannot import from "conftest" when several suites run in one session) and the summary printed at the end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import tally  # noqa: E402
from resilience_rig import resources, rig, stack  # noqa: E402,F401 - fixtures


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not any(tally.CASES.values()):
        return
    terminalreporter.write_sep("=", "resilience summary (issue 5)")
    for line in tally.lines():
        terminalreporter.write_line(line)
