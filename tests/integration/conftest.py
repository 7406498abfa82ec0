"""Fixtures of the pipeline integration tests (helpers live in pipeline_harness.py, imported by name)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from pipeline_harness import Pipeline, Stack, fresh_pipeline, start_stack  # noqa: E402


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    stack, stop = start_stack()
    yield stack
    stop()


@pytest.fixture
def pipeline(stack: Stack) -> Pipeline:
    return fresh_pipeline(stack)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Powertools warns when an invocation recorded no metric (a duplicate webhook, an ignored key): expected here."""
    here = Path(__file__).parent
    if not items or not items[0].config.pluginmanager.has_plugin("warnings"):
        return
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings("ignore:No application metrics to publish"))
