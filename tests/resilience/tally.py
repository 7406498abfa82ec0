"""Counters the resilience suites add to, printed by conftest's terminal summary (issue 5's report).

Every test records what it tried (duplicate deliveries, injected faults, hostile inputs) and what the
pipeline let through (lost jobs, duplicate submissions, accepted forgeries: all must stay 0).
"""

from __future__ import annotations

from collections import Counter

COUNTS: Counter[str] = Counter()
CASES: dict[str, list[str]] = {"fault": [], "hostile": [], "exactly_once": [], "secrets": []}

TRIED = ("duplicate_deliveries", "injected_faults", "hostile_inputs", "reconciler_runs")
BAD = ("lost_jobs", "duplicate_submissions", "accepted_forgeries", "partial_outputs", "secret_leaks")


def add(name: str, value: int = 1) -> None:
    COUNTS[name] += value


def case(kind: str, name: str) -> None:
    CASES.setdefault(kind, []).append(name)


def lines() -> list[str]:
    out = ["cases: " + ", ".join(f"{k} {len(v)}" for k, v in CASES.items())]
    out.append("tried: " + ", ".join(f"{k} {COUNTS[k]}" for k in TRIED))
    out.append("must be 0: " + ", ".join(f"{k} {COUNTS[k]}" for k in BAD))
    return out
