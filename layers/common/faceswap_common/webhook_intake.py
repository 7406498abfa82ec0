"""The provider's webhook: verify, record, hand the copy off, answer fast.

Why it is shaped like this: the Function URL is public, so nothing is read or written before the Ed25519
signature over the raw body checks out (401 otherwise). The job id comes from our own query string and
the body's request_id must match the one recorded at submit (409 otherwise), so a valid signature for
another job cannot touch this one. The result copy can take minutes for a large video while fal retries
slow webhooks, so an OK result only moves the job to STORING and sends a message to ResultCopyQueue;
the StoreResult worker does the download. Duplicate deliveries are no-ops answering 200 (a STORING job
is re-enqueued, which is harmless: the worker copies only while the job is STORING).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from . import aws_clients
from .errors import ErrorCode, PipelineError
from .job_failure import fail_job
from .job_store import JobError, JobRecord, JobStatus, JobStore
from .observability import WEBHOOKS_REJECTED, bind, count, logger
from .settings import Settings
from .signatures import InvalidSignature, JwksUnavailable, WebhookVerifier

MAX_BODY_BYTES = 1024 * 1024


class WebhookOutcome(BaseModel):
    """HTTP answer for the Function URL: status code and a small JSON body."""

    status_code: int
    body: dict[str, Any]


class CopyRequest(BaseModel):
    """The ResultCopyQueue message."""

    job_id: str
    request_id: str


@dataclass
class WebhookDeps:
    settings: Settings
    verifier: WebhookVerifier
    jobs: JobStore
    sqs: Any
    events: Any
    token_key: Callable[[], bytes] | None = None  # set when WEBHOOK_TOKEN_SECRET_ARN is: URLs carry &token=

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> WebhookDeps:
        """Everything the webhook talks to, built cheaply at cold start.

        The AWS clients and the JWKS HTTP client are LazyClients (aws_clients): boto3 and httpx are imported
        and the clients built on the first delivery, not in Init; a warm container keeps them.
        """
        from .signatures import JwksCache

        endpoint = settings.aws_endpoint_url
        settings.need("RESULT_COPY_QUEUE_URL")
        verifier = overrides.pop("verifier", None) or WebhookVerifier(
            JwksCache(settings.jwks_url, aws_clients.LazyClient(_jwks_http_client))
        )
        jobs = overrides.pop("jobs", None) or JobStore(
            settings.jobs_table, aws_clients.lazy_resource("dynamodb", endpoint), ttl_days=settings.job_ttl_days
        )
        sqs = overrides.pop("sqs", None) or aws_clients.lazy_client("sqs", endpoint)
        events = overrides.pop("events", None) or aws_clients.lazy_client("events", endpoint)
        if "token_key" not in overrides and os.environ.get("WEBHOOK_TOKEN_SECRET_ARN", "").strip():
            from .submission import token_key_reader

            overrides["token_key"] = token_key_reader(settings)
        return cls(settings, verifier, jobs, sqs, events, **overrides)


def _jwks_http_client() -> Any:
    import httpx

    return httpx.Client(timeout=httpx.Timeout(5.0, connect=3.0))


def _answer(status_code: int, message: str, **extra: Any) -> WebhookOutcome:
    return WebhookOutcome(status_code=status_code, body={"message": message, **extra})


def handle_webhook(
    headers: Mapping[str, str], raw_body: bytes, query: Mapping[str, str] | None, deps: WebhookDeps
) -> WebhookOutcome:
    """Verify the signature on the raw bytes, then apply the payload to the job named in the query."""
    if len(raw_body) > MAX_BODY_BYTES:
        count(WEBHOOKS_REJECTED)
        return _answer(413, "body too large")
    try:
        verified = deps.verifier.verify(headers, raw_body)
    except InvalidSignature as exc:
        count(WEBHOOKS_REJECTED)
        logger.warning("webhook rejected: bad signature", extra={"reason": exc.reason})
        return _answer(401, "invalid signature")
    except JwksUnavailable as exc:
        logger.error("webhook keys unavailable", extra={"error": exc.message})
        return _answer(503, "signing keys unavailable, retry later")

    from .api_models import WebhookPayload

    try:
        payload = WebhookPayload.model_validate_json(raw_body)
    except ValidationError:
        logger.warning("webhook body is not a webhook payload")
        return _answer(400, "body is not a webhook payload")
    job_id = (query or {}).get("job_id", "")
    bind(job_id=job_id or None, request_id=payload.request_id)
    if verified.request_id not in (payload.request_id, payload.gateway_request_id):
        logger.warning("signed request id does not match the body", extra={"signed": verified.request_id})
        return _answer(401, "invalid signature")
    if not job_id or len(job_id) > 128:
        return _answer(400, "job_id query parameter required")
    if deps.token_key is not None and not _token_ok(deps.token_key(), job_id, (query or {}).get("token", "")):
        count(WEBHOOKS_REJECTED)
        logger.warning("webhook rejected: job token missing or wrong")
        return _answer(401, "invalid token")

    job = deps.jobs.get(job_id)
    if job is None:
        logger.warning("webhook for unknown job")
        return _answer(404, "unknown job")
    if job.request_id is not None and job.request_id != payload.request_id:
        logger.warning("webhook request_id does not match the job", extra={"job_request_id": job.request_id})
        return _answer(409, "request_id does not match this job")
    if job.status == JobStatus.STORING:
        _enqueue_copy(job.job_id, payload.request_id, deps)  # a re-delivery: make sure a copy is queued
        return _answer(200, "duplicate, copy already queued", status=job.status.value)
    if job.status.is_terminal:
        logger.info("duplicate webhook for a finished job", extra={"status": job.status.value})
        return _answer(200, "duplicate, job already finished", status=job.status.value)

    if payload.is_error:
        return _provider_error(job, payload, deps)
    if not payload.is_ok:
        logger.info("webhook with a non-final status ignored", extra={"status": payload.status})
        return _answer(200, "status noted", status=job.status.value)
    return _provider_ok(job, payload, deps)


def _token_ok(key: bytes, job_id: str, token: str) -> bool:
    """Constant-time check of the per-job URL token that submission put in the webhook URL."""
    import hmac

    from .submission import webhook_token

    return hmac.compare_digest(webhook_token(key, job_id), token)


def _provider_error(job: JobRecord, payload: Any, deps: WebhookDeps) -> WebhookOutcome:
    from .provider import _detail_text

    detail = payload.payload.get("detail") if isinstance(payload.payload, dict) else payload.payload
    text = _detail_text(detail) if detail is not None else ""
    message = "; ".join(p for p in (payload.error, text, payload.payload_error) if p) or "provider reported an error"
    error = JobError(code=ErrorCode.PROVIDER_FAILED, message=message, detail=detail)
    return _fail(job, error, deps, request_id=payload.request_id)


def _provider_ok(job: JobRecord, payload: Any, deps: WebhookDeps) -> WebhookOutcome:
    from .url_guard import (  # imports httpx: only on this path
        UrlNotAllowed,
        check_result_url,
    )

    result: dict[str, Any] | None = None
    if payload.payload is None:
        # No usable payload (fal's payload_error case): the worker fetches the result from the queue.
        logger.warning("OK webhook without payload; the copy worker will fetch the result",
                       extra={"payload_error": payload.payload_error})
    else:
        try:
            output = job.endpoint.output_model.model_validate(payload.payload)
        except ValidationError as exc:
            detail = [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors()]
            error = JobError(code=ErrorCode.RESULT_INVALID, message="provider result does not match the output schema",
                             detail=detail)
            return _fail(job, error, deps, request_id=payload.request_id)
        file = output.video if job.endpoint.is_video else output.image  # type: ignore[union-attr]
        try:
            check_result_url(file.url, deps.settings.allowed_result_hosts)
        except UrlNotAllowed as exc:
            return _fail(job, JobError.from_exception(exc), deps, request_id=payload.request_id)
        except PipelineError as exc:  # DNS trouble: not a verdict; the worker checks again before fetching
            logger.warning("result host not resolvable now", extra={"error": exc.message})
        result = output.model_dump(mode="json", exclude_none=True)

    if not deps.jobs.mark_storing(job.job_id, payload.request_id, result):
        current = deps.jobs.get(job.job_id)
        status = current.status if current else None
        if status == JobStatus.STORING:
            _enqueue_copy(job.job_id, payload.request_id, deps)
        logger.info("concurrent delivery already moved the job", extra={"status": getattr(status, "value", None)})
        return _answer(200, "duplicate", status=getattr(status, "value", None))
    _enqueue_copy(job.job_id, payload.request_id, deps)
    logger.info("result recorded, copy queued", extra={"status": JobStatus.STORING.value})
    return _answer(200, "accepted", status=JobStatus.STORING.value)


def _enqueue_copy(job_id: str, request_id: str, deps: WebhookDeps) -> None:
    body = CopyRequest(job_id=job_id, request_id=request_id).model_dump_json()
    deps.sqs.send_message(QueueUrl=deps.settings.need("RESULT_COPY_QUEUE_URL"), MessageBody=body)


def _fail(job: JobRecord, error: JobError, deps: WebhookDeps, *, request_id: str) -> WebhookOutcome:
    current = fail_job(deps.jobs, deps.events, deps.settings.event_bus_name, job.job_id, error)
    status = current.status.value if current else JobStatus.FAILED.value
    return _answer(200, "recorded", status=status, error=json.loads(error.model_dump_json()))


__all__ = ["CopyRequest", "WebhookDeps", "WebhookOutcome", "handle_webhook"]
