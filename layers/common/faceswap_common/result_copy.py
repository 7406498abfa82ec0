"""ResultCopyQueue message → the result streamed into outputs/<job_id>/<name> → job COMPLETED.

Why a queue worker: a result can be gigabytes, far beyond what a webhook may take to answer. The copy is a
bounded-memory multipart upload that is aborted on any failure, so the job stays STORING (and SQS
delivers the message again) until the object exists whole; only then is the job COMPLETED. Errors that a
retry cannot fix (result too large, host not allowed, the provider's 4xx on the result) end the job
FAILED instead, so nothing sits in the dead-letter queue for a known reason.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from . import aws_clients
from .errors import ErrorCode, PipelineError
from .job_failure import fail_job
from .job_store import JobError, JobRecord, JobStatus, JobStore, OutputRef
from .media_types import content_type_for, extension_for_content_type, kind_of
from .observability import JOBS_COMPLETED, PROCESSING_TIME, bind, count, logger, milliseconds
from .settings import Settings

OUTPUT_PREFIX = "outputs/"
# Errors a redelivery cannot fix: the job ends FAILED at once.
PERMANENT = frozenset({
    ErrorCode.RESULT_TOO_LARGE, ErrorCode.RESULT_URL_NOT_ALLOWED, ErrorCode.RESULT_INVALID, ErrorCode.RESULT_EMPTY,
})  # fmt: skip
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class TransientCopyError(Exception):
    """Raised so that SQS delivers the message again (the handler reports a batch item failure)."""


@dataclass
class CopyDeps:
    settings: Settings
    s3: Any
    jobs: JobStore
    http: Any
    events: Any
    provider_factory: Callable[[], Any]
    part_size: int = 8 * 1024 * 1024
    _provider: Any = field(default=None, repr=False)

    @property
    def provider(self) -> Any:
        if self._provider is None:
            self._provider = self.provider_factory()
        return self._provider

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> CopyDeps:
        """Everything the copy worker talks to, built cheaply at cold start: the AWS clients and the HTTP
        client are LazyClients (aws_clients), created with the first message and kept by a warm container."""
        endpoint = settings.aws_endpoint_url
        s3 = overrides.pop("s3", None) or aws_clients.lazy_client("s3", endpoint)
        jobs = overrides.pop("jobs", None) or JobStore(
            settings.jobs_table, aws_clients.lazy_resource("dynamodb", endpoint), ttl_days=settings.job_ttl_days
        )
        http = overrides.pop("http", None) or aws_clients.LazyClient(_http_client)
        events = overrides.pop("events", None) or aws_clients.lazy_client("events", endpoint)

        def provider() -> Any:
            from .submission import provider_client

            return provider_client(settings)

        return cls(settings, s3, jobs, http, events, overrides.pop("provider_factory", None) or provider, **overrides)


def _http_client() -> Any:
    import httpx

    return httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))


def output_key(job_id: str, file_name: str | None, url: str, kind: str, content_type: str | None) -> str:
    """outputs/<job_id>/<safe name>: the provider's file name, else the URL's, else result.<ext>."""
    candidates = [file_name or "", posixpath.basename(url.split("?", 1)[0].split("#", 1)[0])]
    for candidate in candidates:
        name = _SAFE_NAME.sub("_", candidate).strip("._")
        if name and kind_of(name) == kind:
            return f"{OUTPUT_PREFIX}{job_id}/{name[:200]}"
    return f"{OUTPUT_PREFIX}{job_id}/result.{extension_for_content_type(content_type, kind)}"  # type: ignore[arg-type]


def store_result(job_id: str, deps: CopyDeps, *, attempt: int = 1, max_attempts: int | None = None) -> str:
    """Copy the job's result into the bucket; return the final status. Raises TransientCopyError to retry.

    `attempt`/`max_attempts` (SQS ApproximateReceiveCount / the redrive maxReceiveCount): on the last
    attempt a still-failing download ends the job FAILED instead of leaving it to the dead-letter queue.
    """
    bind(job_id=job_id)
    job = deps.jobs.get(job_id)
    if job is None:
        logger.warning("copy requested for an unknown job")
        return "UNKNOWN"
    bind(request_id=job.request_id)
    if job.status != JobStatus.STORING:
        logger.info("nothing to copy", extra={"status": job.status.value})
        return job.status.value
    deps.jobs.mark_copy_attempt(job_id)
    try:
        output, processing_time_ms, warning = _copy(job, deps)
    except PipelineError as exc:
        last = max_attempts is not None and attempt >= max_attempts
        if exc.code in PERMANENT or last or isinstance(exc, _Permanent):
            return _fail(job, JobError.from_exception(exc), deps)
        logger.warning("result copy failed, will retry", extra={"error_code": exc.code, "error": exc.message,
                                                                "attempt": attempt})
        raise TransientCopyError(exc.message) from exc
    return _complete(job, output, processing_time_ms, warning, deps)


class _Permanent(PipelineError):
    pass


def _result_of(job: JobRecord, deps: CopyDeps) -> dict[str, Any]:
    if job.result:
        return job.result
    from .provider import ProviderError

    if not job.request_id:
        raise _Permanent(ErrorCode.RESULT_INVALID, "no result and no request_id to fetch it with")
    try:
        return deps.provider.result(job.endpoint, job.request_id)
    except ProviderError as exc:
        if exc.retryable or exc.status_code is None or exc.status_code >= 500:
            raise
        raise _Permanent(ErrorCode.PROVIDER_FAILED, f"provider result failed (HTTP {exc.status_code}): {exc.message}",
                         exc.detail) from exc


def _copy(job: JobRecord, deps: CopyDeps) -> tuple[OutputRef, int | None, str | None]:
    from .storage import stream_url_to_s3
    from .url_guard import UrlGuard

    raw = _result_of(job, deps)
    try:
        output = job.endpoint.output_model.model_validate(raw)
    except ValidationError as exc:
        detail = [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()]
        raise _Permanent(ErrorCode.RESULT_INVALID, "provider result does not match the output schema", detail) from None
    file = output.video if job.endpoint.is_video else output.image  # type: ignore[union-attr]
    key = output_key(job.job_id, file.file_name, file.url, job.endpoint.kind, file.content_type)
    content_type = (file.content_type or "").split(";", 1)[0].strip() or content_type_for(key)
    guard = UrlGuard(deps.settings.allowed_result_hosts)
    size = stream_url_to_s3(
        deps.http, file.url, deps.s3, deps.settings.media_bucket, key, content_type,
        deps.settings.max_result_bytes, deps.part_size, url_check=guard.check,
    )
    ref = OutputRef(bucket=deps.settings.media_bucket, key=key, size=size, content_type=content_type)
    return ref, output.processing_time_ms, output.warning


def _complete(job: JobRecord, output: OutputRef, processing_time_ms: int | None, warning: str | None,
              deps: CopyDeps) -> str:
    from .notifications import publish_job_event

    if not deps.jobs.mark_completed(job.job_id, output, processing_time_ms, warning):
        current = deps.jobs.get(job.job_id)
        logger.info("job finished elsewhere meanwhile", extra={"status": current.status.value if current else None})
        return current.status.value if current else "UNKNOWN"
    count(JOBS_COMPLETED)
    if processing_time_ms is not None:
        milliseconds(PROCESSING_TIME, processing_time_ms)
    logger.info("job completed", extra={"output_key": output.key, "size": output.size, "status": "COMPLETED"})
    current = deps.jobs.get(job.job_id)
    if current is not None:
        publish_job_event(deps.events, deps.settings.event_bus_name, current)
    return JobStatus.COMPLETED.value


def _fail(job: JobRecord, error: JobError, deps: CopyDeps) -> str:
    current = fail_job(deps.jobs, deps.events, deps.settings.event_bus_name, job.job_id, error)
    return current.status.value if current else JobStatus.FAILED.value


__all__ = ["CopyDeps", "TransientCopyError", "output_key", "store_result"]
