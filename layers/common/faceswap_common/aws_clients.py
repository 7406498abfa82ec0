"""AWS clients for the handlers, created on first use and then kept: the one place that imports boto3.

Why: `import boto3` costs ~0.2 s and every client another ~20-60 ms, all of it in the Lambda Init phase when
a handler builds its clients at module level, and some are needed only now and then (EventBridge when a job
finishes, Secrets Manager with the first provider call). A `LazyClient` costs nothing at cold start, builds
its client on the first attribute access and keeps it for every warm invocation after (the client reuse the
Lambda guidance asks for). The cost moves to the first invocation, it does not vanish:
bench/bench_pipeline.py prints "import" and "import + first invocation" side by side.

Creation is serialised: boto3's default session is not thread-safe while it builds clients.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_CREATE_LOCK = threading.RLock()


def endpoint_kwargs(endpoint_url: str | None) -> dict[str, Any]:
    """{"endpoint_url": ...} for the local stack (AWS_ENDPOINT_URL), {} for real AWS."""
    return {"endpoint_url": endpoint_url} if endpoint_url else {}


def client(service: str, endpoint_url: str | None = None, **kwargs: Any) -> Any:
    """A new boto3 client now (boto3 is imported here, on the first call)."""
    with _CREATE_LOCK:
        import boto3

        return boto3.client(service, **endpoint_kwargs(endpoint_url), **kwargs)  # type: ignore[call-overload]


def resource(service: str, endpoint_url: str | None = None, **kwargs: Any) -> Any:
    """A new boto3 resource now (used for the DynamoDB Table API of job_store)."""
    with _CREATE_LOCK:
        import boto3

        return boto3.resource(service, **endpoint_kwargs(endpoint_url), **kwargs)  # type: ignore[call-overload]


class LazyClient:
    """Stands in for a client (or any object) built by `factory` on first attribute access, then cached.

    Its own attributes are `_lazy_*` names only, so every public name (`get`, `meta`, ...) reaches the client.
    """

    __slots__ = ("_lazy_factory", "_lazy_target", "_lazy_lock")

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._lazy_factory = factory
        self._lazy_target: Any = None
        self._lazy_lock = threading.Lock()

    def _lazy_get(self) -> Any:
        """The real object, built now if it was not yet."""
        if self._lazy_target is None:
            with self._lazy_lock:
                if self._lazy_target is None:
                    self._lazy_target = self._lazy_factory()
        return self._lazy_target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._lazy_get(), name)

    def __repr__(self) -> str:
        target = self._lazy_target
        return f"LazyClient({target!r})" if target is not None else "LazyClient(<not created yet>)"


def lazy_client(service: str, endpoint_url: str | None = None, **kwargs: Any) -> Any:
    """A LazyClient for `boto3.client(service, ...)`."""
    return LazyClient(lambda: client(service, endpoint_url, **kwargs))


def lazy_resource(service: str, endpoint_url: str | None = None, **kwargs: Any) -> Any:
    """A LazyClient for `boto3.resource(service, ...)`."""
    return LazyClient(lambda: resource(service, endpoint_url, **kwargs))


def unwrap(obj: Any) -> Any:
    """The real object behind a LazyClient (built now), or `obj` itself."""
    return obj._lazy_get() if isinstance(obj, LazyClient) else obj


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ClientError (duck-typed, so callers need not import botocore)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


__all__ = ["LazyClient", "client", "endpoint_kwargs", "error_code", "lazy_client", "lazy_resource", "resource",
           "unwrap"]
