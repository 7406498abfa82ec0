"""What the integration and resilience suites share to call handlers in-process as Lambda would.

Handlers are loaded by file path (every function's module is called ``app``), under a name of the caller's choosing,
so each suite gets its own module objects, built with its own environment at import as in a cold start.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


@dataclass
class FakeContext:
    """The attributes of a Lambda context that Powertools and the handlers read."""

    remaining_ms: int = 60_000
    function_name: str = "faceswap-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:faceswap-test"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_event(name: str) -> dict[str, Any]:
    """One of the sample events in events/ (the same files `sam local invoke -e` takes)."""
    return json.loads((EVENTS / name).read_text())


def load_handler(name: str, prefix: str) -> ModuleType:
    """functions/<name>/app.py, imported afresh as ``<prefix><name>``."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"{prefix}{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
