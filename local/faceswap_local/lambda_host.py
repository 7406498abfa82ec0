"""Runs the project's Lambda handlers in this process, as Lambda would: same module, same event, same env.

Each function is loaded by file path (``functions/<name>/app.py``; every handler file is called ``app``, so they
cannot share ``sys.path``), with the environment that template.yaml's Globals and the function's own
Environment would give it; only the AWS endpoint and the local names and URLs differ. One invocation at a
time per function (as with a reserved concurrency of 1), and START/END/REPORT lines like CloudWatch's.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from faceswap_local import logs

log = logging.getLogger("local.lambda")

# template logical id -> folder under functions/
FUNCTIONS: dict[str, str] = {
    "SubmitJobFunction": "submit_job",
    "WebhookFunction": "webhook",
    "StoreResultFunction": "store_result",
    "ReconcileJobsFunction": "reconcile_jobs",
}


def _resolve(value: Any, parameters: Mapping[str, str]) -> str | None:
    """A literal, or a Ref to a parameter (its local value or default); None for anything the stack must supply."""
    if isinstance(value, (str, int, float, bool)):
        return str(value).lower() if isinstance(value, bool) else str(value)
    if isinstance(value, Mapping) and set(value) == {"Ref"} and value["Ref"] in parameters:
        return parameters[value["Ref"]]
    if isinstance(value, Mapping) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for name, param in parameters.items():
            text = text.replace("${" + name + "}", param)
        return None if "${" in text else text
    return None


def function_environment(
    template: Mapping[str, Any], logical_id: str, parameter_values: Mapping[str, str], local: Mapping[str, str]
) -> dict[str, str]:
    """Globals + function Environment.Variables from the template, resolved; ``local`` values win."""
    params = {
        name: str(spec.get("Default", ""))
        for name, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, Mapping)
    }
    params.update(parameter_values)
    params.setdefault("AWS::Region", local.get("AWS_REGION", "us-east-1"))
    params.setdefault("AWS::AccountId", "123456789012")
    params.setdefault("AWS::StackName", "faceswap-local")
    glob = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    props = ((template.get("Resources") or {}).get(logical_id) or {}).get("Properties") or {}
    variables = {**(glob.get("Variables") or {}), **((props.get("Environment") or {}).get("Variables") or {})}
    env: dict[str, str] = {}
    for name, raw in variables.items():
        resolved = _resolve(raw, params)
        if resolved is not None:
            env[name] = resolved
    env.update(local)
    return env


def handler_location(template: Mapping[str, Any], logical_id: str, root: Path) -> tuple[Path, str]:
    """(file of the handler module, function name) from CodeUri and Handler, defaulting to the repo layout."""
    glob = (template.get("Globals") or {}).get("Function") or {}
    props = ((template.get("Resources") or {}).get(logical_id) or {}).get("Properties") or {}
    code_uri = props.get("CodeUri") or f"functions/{FUNCTIONS[logical_id]}/"
    handler = props.get("Handler") or glob.get("Handler") or "app.lambda_handler"
    module, _, func = str(handler).rpartition(".")
    return root / str(code_uri) / (module.replace(".", "/") + ".py"), func


@dataclass
class LambdaContext:
    """The attributes of Lambda's context object that handlers and Powertools read."""

    function_name: str
    memory_limit_in_mb: int = 1024
    timeout_seconds: int = 900
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"
    _deadline: float = field(default=0.0, repr=False)

    def __post_init__(self) -> None:
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self._deadline = time.monotonic() + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class InvocationError(RuntimeError):
    """The handler raised; Lambda would report a function error."""


@dataclass
class LocalFunction:
    """One handler module loaded in this process."""

    logical_id: str
    name: str
    module: ModuleType
    handler_name: str
    timeout_seconds: int
    memory_mb: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    def invoke(self, event: Mapping[str, Any]) -> Any:
        """Call the handler once with ``event``; raises InvocationError if it raised."""
        context = LambdaContext(self.name, self.memory_mb, self.timeout_seconds)
        with self.lock, logs.component(self.name):
            log.info("START RequestId: %s", context.aws_request_id)
            started = time.perf_counter()
            try:
                return getattr(self.module, self.handler_name)(dict(event), context)
            except Exception as exc:
                log.exception("function error: %s", exc)
                raise InvocationError(f"{self.name}: {type(exc).__name__}: {exc}") from exc
            finally:
                elapsed = (time.perf_counter() - started) * 1000
                log.info("END RequestId: %s Duration: %.1f ms", context.aws_request_id, elapsed)


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def load_functions(root: Path, template: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, LocalFunction]:
    """Import every handler that exists, after putting ``env`` into os.environ (handlers read it at import)."""
    os.environ.update(env)
    layer = str(root / "layers" / "common")
    if layer not in sys.path:
        sys.path.insert(0, layer)  # /opt/python in Lambda
    glob = (template.get("Globals") or {}).get("Function") or {}
    loaded: dict[str, LocalFunction] = {}
    for logical_id, name in FUNCTIONS.items():
        path, func = handler_location(template, logical_id, root)
        if not path.is_file():
            log.warning("%s: %s does not exist (yet); not served", logical_id, path.relative_to(root))
            continue
        props = ((template.get("Resources") or {}).get(logical_id) or {}).get("Properties") or {}
        spec = importlib.util.spec_from_file_location(f"faceswap_local_fn_{name}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        with logs.component(name):
            spec.loader.exec_module(module)
        if not callable(getattr(module, func, None)):
            log.warning("%s: %s has no %s(); not served", logical_id, path.relative_to(root), func)
            continue
        loaded[name] = LocalFunction(
            logical_id=logical_id,
            name=name,
            module=module,
            handler_name=func,
            timeout_seconds=_int(props.get("Timeout", glob.get("Timeout")), 60),
            memory_mb=_int(props.get("MemorySize", glob.get("MemorySize")), 1024),
        )
        log.info("loaded %s from %s (%s)", logical_id, path.relative_to(root), func)
    return loaded
