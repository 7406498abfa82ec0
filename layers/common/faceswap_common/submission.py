"""S3 ObjectCreated → job record → provider submit: what the SubmitJob function does for each record.

Why this order: the job is written PENDING (deterministic id from bucket/key/etag, so duplicate events
collapse onto one record) before the provider is called, and the webhook URL carries that id, so a webhook
can never arrive for a job we have not recorded. The submit POST goes out at most once per job: a second
POST is a second bill. Only a refusal that proves nothing was enqueued (connection refused, 429, 503) is
retried here; an unknown outcome leaves the job PENDING with its attempt stamped, for the webhook or the
reconciler to settle. Every failure with a known cause ends the job FAILED with code, message and the
field at fault, plus a "Face Swap Job Failed" event.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from . import aws_clients
from .api_models import Endpoint
from .errors import ErrorCode, PipelineError
from .job_failure import fail_job
from .job_store import JobError, JobRecord, JobStatus, JobStore, TriggerRef, make_job_id
from .jobspec import JobSpec, SizeLimits, decode_event_key, resolve_job_spec
from .media_types import kind_of
from .observability import JOBS_SUBMITTED, bind, count, logger
from .settings import Settings

if TYPE_CHECKING:  # the provider client imports httpx: loaded with the first submit, not at cold start
    from .provider import FalQueueClient

Outcome = Literal["submitted", "ignored", "failed", "duplicate", "unknown"]

# Submit refusals that prove nothing was enqueued are retried inline this many times (with these pauses).
UNAVAILABLE_RETRY_DELAYS: tuple[float, ...] = (0.5, 2.0)


class ObjectRef(BaseModel):
    """One S3 ObjectCreated record: the idempotency key of a submission."""

    bucket: str
    key: str  # decoded
    etag: str | None = None
    sequencer: str | None = None

    @property
    def version(self) -> str | None:
        """What tells two uploads of one key apart: the etag, else the sequencer."""
        return (self.etag or "").strip('"') or self.sequencer or None

    @property
    def job_id(self) -> str:
        return make_job_id(self.bucket, self.key, self.version)


class SubmitOutcome(BaseModel):
    """What happened to one record (also the idempotency layer's stored answer)."""

    outcome: Outcome
    job_id: str | None = None
    status: str | None = None
    request_id: str | None = None
    reason: str | None = None
    error: dict[str, Any] | None = None


@dataclass
class SubmitDeps:
    """Everything submission talks to; built once per cold start (see `from_settings`)."""

    settings: Settings
    s3: Any
    jobs: JobStore
    provider_factory: Callable[[], FalQueueClient]
    events: Any
    presign: Callable[[str], str]
    sleep: Callable[[float], None] = time.sleep
    token_key: Callable[[], bytes] | None = None  # WEBHOOK_TOKEN_SECRET_ARN: per-job token in the webhook URL
    _provider: FalQueueClient | None = field(default=None, repr=False)

    @property
    def provider(self) -> FalQueueClient:
        """Created on first use: reading the key costs a Secrets Manager call (cached by Powertools)."""
        if self._provider is None:
            self._provider = self.provider_factory()
        return self._provider

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SubmitDeps:
        """Everything submission talks to, built cheaply at cold start: the AWS clients are LazyClients
        (aws_clients), created with the first record and kept by a warm container."""
        s3 = overrides.pop("s3", None) or aws_clients.LazyClient(lambda: s3_client(settings))
        jobs = overrides.pop("jobs", None) or JobStore(
            settings.jobs_table, aws_clients.lazy_resource("dynamodb", settings.aws_endpoint_url),
            ttl_days=settings.job_ttl_days,
        )
        events = overrides.pop("events", None) or aws_clients.lazy_client("events", settings.aws_endpoint_url)
        provider_factory = overrides.pop("provider_factory", None) or (lambda: provider_client(settings))
        presign = overrides.pop("presign", None) or (
            lambda key: _presign(s3, settings.media_bucket, key, settings.presign_expiry_seconds)
        )
        overrides.setdefault("token_key", token_key_reader(settings))
        return cls(settings, s3, jobs, provider_factory, events, presign, **overrides)


def _presign(s3: Any, bucket: str, key: str, expires: int) -> str:
    from .storage import presign_get  # storage imports httpx: only when a job is built

    return presign_get(s3, bucket, key, expires)


def s3_client(settings: Settings) -> Any:
    """SigV4 S3 client (presigned URLs must be v4); path-style when an endpoint override is set."""
    from botocore.config import Config

    style = "path" if settings.aws_endpoint_url else "virtual"
    config = Config(signature_version="s3v4", s3={"addressing_style": style})
    return aws_clients.client("s3", settings.aws_endpoint_url, config=config)


def token_key_reader(settings: Settings) -> Callable[[], bytes] | None:
    """Reader of the webhook-token key (Secrets Manager, cached) if WEBHOOK_TOKEN_SECRET_ARN is set, else None.

    Why: fal's signature covers the body, not the URL, so a validly signed delivery of one job could be replayed
    at another job's URL while that job has no request_id recorded yet. An HMAC of the job id in the URL,
    which only our functions can compute, binds each delivery to its job.
    """
    import os

    arn = os.environ.get("WEBHOOK_TOKEN_SECRET_ARN", "").strip()
    if not arn:
        return None
    cache: dict[str, bytes] = {}

    def read() -> bytes:
        if "key" not in cache:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            secrets = SecretsProvider(boto3_client=aws_clients.client("secretsmanager", settings.aws_endpoint_url))
            raw = secrets.get(arn, max_age=3600)
            cache["key"] = raw.encode() if isinstance(raw, str) else bytes(raw)
        return cache["key"]

    return read


def webhook_token(key: bytes, job_id: str) -> str:
    """The per-job token: HMAC-SHA256(key, job_id), hex, 32 chars (webhook_intake checks the same)."""
    import hashlib
    import hmac

    return hmac.new(key, job_id.encode(), hashlib.sha256).hexdigest()[:32]


def provider_client(settings: Settings) -> FalQueueClient:
    """Queue client with the key from Secrets Manager (Powertools parameters: cached, never logged)."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from .provider import FalQueueClient
    from .settings import fal_key_from_secret

    arn = settings.need("FAL_KEY_SECRET_ARN")
    secrets = SecretsProvider(boto3_client=aws_clients.client("secretsmanager", settings.aws_endpoint_url))
    raw = secrets.get(arn, max_age=300)
    key = fal_key_from_secret(raw if isinstance(raw, str) else bytes(raw).decode())
    return FalQueueClient(settings.provider_base_url, settings.provider_app_id, key)


def object_ref_from_record(record: Any) -> ObjectRef:
    """Powertools S3EventRecord (data class) → ObjectRef with the key URL-decoded once."""
    s3 = record["s3"] if isinstance(record, dict) else record.raw_event["s3"]
    obj = s3["object"]
    return ObjectRef(
        bucket=s3["bucket"]["name"],
        key=decode_event_key(obj["key"]),
        etag=obj.get("eTag") or obj.get("etag"),
        sequencer=obj.get("sequencer"),
    )


def submit_object(obj: ObjectRef, deps: SubmitDeps) -> SubmitOutcome:
    """Resolve, record, presign and submit one uploaded object; never raises for a job-level failure."""
    job_id = obj.job_id
    bind(job_id=job_id, bucket=obj.bucket, key=obj.key)
    limits = SizeLimits.from_settings(deps.settings)
    try:
        resolution = resolve_job_spec(deps.s3, obj.bucket, obj.key, limits)
    except PipelineError as exc:
        return _fail_before_spec(obj, exc, deps)
    if resolution.ignored or resolution.spec is None:
        logger.info("object ignored, no job", extra={"reason": resolution.ignored_reason})
        return SubmitOutcome(outcome="ignored", reason=resolution.ignored_reason)
    spec = resolution.spec

    trigger = TriggerRef(bucket=obj.bucket, key=obj.key, etag=obj.etag, sequencer=obj.sequencer)
    if not deps.jobs.create_pending(job_id, spec.endpoint, trigger, spec.inputs()):
        existing = deps.jobs.get(job_id)
        if existing is None or existing.status != JobStatus.PENDING or existing.submit_attempted_at:
            return _duplicate(existing, job_id)
        logger.info("resuming a PENDING job that was never sent")
    logger.info("job recorded", extra={"endpoint": spec.endpoint.value, "status": JobStatus.PENDING.value})
    return _submit(job_id, spec, deps)


def _submit(job_id: str, spec: JobSpec, deps: SubmitDeps) -> SubmitOutcome:
    from .provider import ProviderError

    try:
        input_model = spec.build_input(deps.presign)
    except PipelineError as exc:
        return _fail(job_id, exc, deps)
    webhook_url = deps.settings.webhook_url_for(job_id)
    if deps.token_key is not None:
        webhook_url += f"&token={webhook_token(deps.token_key(), job_id)}"
    delays = iter(UNAVAILABLE_RETRY_DELAYS)
    retry = False
    while True:
        if not deps.jobs.mark_submit_attempt(job_id, retry=retry):
            return _duplicate(deps.jobs.get(job_id), job_id)
        retry = True
        try:
            answer = deps.provider.submit(spec.endpoint, input_model, webhook_url)
            break
        except ProviderError as exc:
            if exc.code == ErrorCode.PROVIDER_UNAVAILABLE:
                delay = next(delays, None)
                if delay is not None:
                    logger.warning("provider refused, nothing enqueued; retrying", extra={"error": exc.message})
                    deps.sleep(delay)
                    continue
                return _fail(job_id, exc, deps)
            if exc.code == ErrorCode.SUBMIT_OUTCOME_UNKNOWN:
                # The job may exist at the provider: no resubmission; webhook or reconciler settles it.
                logger.error("submit outcome unknown; job left PENDING", extra={"error": exc.message})
                return SubmitOutcome(
                    outcome="unknown", job_id=job_id, status=JobStatus.PENDING.value, error=exc.to_dict()
                )
            return _fail(job_id, exc, deps)
    bind(request_id=answer.request_id)
    deps.jobs.mark_submitted(job_id, answer.request_id)
    count(JOBS_SUBMITTED)
    logger.info("job submitted", extra={"endpoint": spec.endpoint.value, "status": JobStatus.SUBMITTED.value})
    return SubmitOutcome(
        outcome="submitted", job_id=job_id, status=JobStatus.SUBMITTED.value, request_id=answer.request_id
    )


def _duplicate(existing: JobRecord | None, job_id: str) -> SubmitOutcome:
    status = existing.status.value if existing else None
    logger.info("duplicate event, job exists", extra={"status": status})
    return SubmitOutcome(
        outcome="duplicate", job_id=job_id, status=status, request_id=existing.request_id if existing else None
    )


def _endpoint_guess(key: str) -> Endpoint:
    """A record needs an endpoint even when resolution failed: the drop file's kind, else image."""
    kind = kind_of(key) if not key.endswith(".json") else None
    return Endpoint.choose(kind or "image", multi=False)


def _fail_before_spec(obj: ObjectRef, exc: PipelineError, deps: SubmitDeps) -> SubmitOutcome:
    """The key is ours but unusable (no face, bad manifest, empty or too large): a FAILED job says why."""
    job_id = obj.job_id
    trigger = TriggerRef(bucket=obj.bucket, key=obj.key, etag=obj.etag, sequencer=obj.sequencer)
    if not deps.jobs.create_pending(job_id, _endpoint_guess(obj.key), trigger, {}):
        existing = deps.jobs.get(job_id)
        if existing is not None and existing.status != JobStatus.PENDING:
            return _duplicate(existing, job_id)
    return _fail(job_id, exc, deps)


def _fail(job_id: str, exc: PipelineError, deps: SubmitDeps) -> SubmitOutcome:
    error = JobError.from_exception(exc)
    job = fail_job(deps.jobs, deps.events, deps.settings.event_bus_name, job_id, error)
    return SubmitOutcome(
        outcome="failed",
        job_id=job_id,
        status=job.status.value if job else JobStatus.FAILED.value,
        error=error.model_dump(mode="json"),
    )


def idempotent_submitter(
    deps: SubmitDeps, persistence_store: Any, config: Any
) -> Callable[[ObjectRef], dict[str, Any]]:
    """`submit_object` wrapped in Powertools idempotency keyed by bucket, key and etag (else sequencer).

    The key is the job's own identity (what make_job_id hashes), so a duplicate delivery of the record and a
    second upload of the very same bytes (same etag, new sequencer) both return the stored outcome without
    touching the provider; concurrent ones get IdempotencyAlreadyInProgressError (Lambda retries later).
    """
    from aws_lambda_powertools.utilities.idempotency import idempotent_function

    @idempotent_function(data_keyword_argument="identity", persistence_store=persistence_store, config=config)
    def _submit_once(identity: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
        return submit_object(ObjectRef.model_validate(obj), deps).model_dump(mode="json")

    def submit(obj: ObjectRef) -> dict[str, Any]:
        identity = {"bucket": obj.bucket, "key": obj.key, "version": obj.version}
        return _submit_once(identity=identity, obj=obj.model_dump(mode="json"))

    return submit


__all__ = [
    "ObjectRef",
    "SubmitDeps",
    "SubmitOutcome",
    "idempotent_submitter",
    "object_ref_from_record",
    "submit_object",
]
