"""One local stack (moto + the real engine + the real handlers) for the whole e2e session, on free ports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from faceswap_local.client import Pipeline, Target
from faceswap_local.config import StackConfig, StackInfo
from faceswap_local.stack import LocalStack


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-stack")


@pytest.fixture(scope="session")
def local_stack(stack_dir: Path) -> Iterator[StackInfo]:
    """The stack as a child process (its handlers' env never leaks into this test process)."""
    config = StackConfig(state_dir=stack_dir, moto_port=0, engine_port=0, gateway_port=0, console=False,
                         reconcile_seconds=30)
    stack = LocalStack(config, start_timeout=240)
    info = stack.start()
    try:
        yield info
    finally:
        code = stack.stop()
        print(f"\nlocal stack stopped (exit {code}); log: {info.log_file}")


@pytest.fixture(scope="session")
def pipeline(local_stack: StackInfo, stack_dir: Path) -> Pipeline:
    return Pipeline(Target.local(stack_dir))
