"""The scheduled reconciler: drives every job that the event flow left behind to an end.

Why: webhooks get lost, Lambdas time out between the provider's answer and our record, copies die in
the dead-letter queue. Each run walks the non-terminal states through the status GSI and settles what
is overdue, reusing the very code the event flow runs, so there is one way a job completes:

- SUBMITTED with no webhook after RECONCILE_AFTER_SECONDS: poll status, then result, and apply the
  answer through the webhook's own OK / ERROR path (webhook_intake), i.e. STORING + copy message, or FAILED.
- PENDING never sent (a crash between the record and the POST): submitted through submission.submit_object.
- PENDING sent with no recorded answer (SUBMIT_OUTCOME_UNKNOWN) past SUBMIT_OUTCOME_DEADLINE_SECONDS:
  FAILED with that reason. Never resubmitted: a second POST is a second bill.
- STORING with no progress past STORING_DEADLINE_SECONDS: the copy is re-enqueued, at most
  MAX_COPY_REQUEUES times, then FAILED (RESULT_COPY_STUCK).
- Older than MAX_JOB_AGE_SECONDS and still queued or running at the provider: cancelled there, FAILED.

Every write is a conditional transition from the state the reconciler saw, so a webhook arriving at any
moment wins the race or makes the reconciler's write a no-op.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ErrorCode, PipelineError
from .job_store import JobError, JobRecord, JobStatus, JobStore, to_dynamo, utc_now_iso
from .observability import JOBS_FAILED, count, logger
from .settings import ConfigError, Settings

# Codes of the reconciler's own verdicts (SUBMIT_OUTCOME_UNKNOWN is shared with the provider client).
JOB_TIMED_OUT = "JOB_TIMED_OUT"
RESULT_COPY_STUCK = "RESULT_COPY_STUCK"
SUBMIT_NEVER_SENT = "SUBMIT_NEVER_SENT"
JOBS_RECONCILED = "JobsReconciled"
_LOG_KEYS = ["job_id", "request_id", "bucket", "key"]


class ReconcileConfig(BaseModel):
    """Deadlines (seconds) from the environment; the defaults suit fal's 2-hour webhook retry window."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    reconcile_after_seconds: int = Field(default=900, alias="RECONCILE_AFTER_SECONDS", ge=0)
    pending_retry_after_seconds: int = Field(default=300, alias="PENDING_RETRY_AFTER_SECONDS", ge=0)
    submit_outcome_deadline_seconds: int = Field(default=3 * 3600, alias="SUBMIT_OUTCOME_DEADLINE_SECONDS", ge=0)
    storing_deadline_seconds: int = Field(default=1800, alias="STORING_DEADLINE_SECONDS", ge=0)
    max_copy_requeues: int = Field(default=3, alias="MAX_COPY_REQUEUES", ge=0, le=100)
    max_job_age_seconds: int = Field(default=24 * 3600, alias="MAX_JOB_AGE_SECONDS", ge=60)
    batch_limit: int = Field(default=1000, alias="RECONCILE_BATCH_LIMIT", ge=1, le=100_000)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReconcileConfig:
        env = os.environ if env is None else env
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        try:
            return cls.model_validate({k: v for k, v in env.items() if k in names})
        except ValidationError as exc:
            problems = [f"invalid environment variable {e['loc'][0]}: {e['msg']}" for e in exc.errors()]
            raise ConfigError("; ".join(problems), detail=problems) from None


class ReconcileReport(BaseModel):
    """What one run did (the handler returns it; tests and logs read it)."""

    examined: int = 0
    polled: int = 0
    recovered: int = 0  # a missed webhook applied from the poll (STORING or FAILED)
    still_running: int = 0
    poll_errors: int = 0
    resubmitted: int = 0
    failed_submit_unknown: int = 0
    failed_never_sent: int = 0
    copy_requeued: int = 0
    failed_copy_stuck: int = 0
    timed_out: int = 0
    cancelled_at_provider: int = 0
    errors: int = 0
    out_of_time: bool = False
    job_ids: dict[str, str] = Field(default_factory=dict)  # job_id -> action taken

    def note(self, job_id: str, action: str) -> None:
        self.job_ids.setdefault(job_id, action)  # a job seen again in a later pass keeps its first action


@dataclass
class ReconcileDeps:
    """Reuses the event flow's dependency bundles, so polling completes a job exactly like a webhook."""

    settings: Settings
    config: ReconcileConfig
    jobs: JobStore
    sqs: Any
    events: Any
    provider_factory: Callable[[], Any]
    submit_deps_factory: Callable[[], Any]
    clock: Callable[[], float] = time.time
    _provider: Any = field(default=None, repr=False)
    _submit_deps: Any = field(default=None, repr=False)

    @property
    def provider(self) -> Any:
        """Created on first use (the key is read once per cold start through Powertools parameters)."""
        if self._provider is None:
            self._provider = self.provider_factory()
        return self._provider

    @property
    def submit_deps(self) -> Any:
        if self._submit_deps is None:
            self._submit_deps = self.submit_deps_factory()
        return self._submit_deps

    def webhook_deps(self) -> Any:
        """The webhook's dependency bundle (its verifier is never used on this path)."""
        from .webhook_intake import WebhookDeps

        return WebhookDeps(self.settings, None, self.jobs, self.sqs, self.events)  # type: ignore[arg-type]

    @classmethod
    def from_settings(cls, settings: Settings, config: ReconcileConfig | None = None, **overrides: Any) -> ReconcileDeps:
        import boto3

        from .submission import SubmitDeps

        settings.need("RESULT_COPY_QUEUE_URL")
        endpoint = {"endpoint_url": settings.aws_endpoint_url} if settings.aws_endpoint_url else {}
        jobs = overrides.pop("jobs", None) or JobStore(
            settings.jobs_table, boto3.resource("dynamodb", **endpoint), ttl_days=settings.job_ttl_days
        )
        sqs = overrides.pop("sqs", None) or boto3.client("sqs", **endpoint)
        events = overrides.pop("events", None) or boto3.client("events", **endpoint)
        provider_factory = overrides.pop("provider_factory", None) or (lambda: reconciler_provider_client(settings))
        holder: dict[str, ReconcileDeps] = {}

        def submit_deps() -> SubmitDeps:
            deps = holder["self"]
            return SubmitDeps.from_settings(settings, jobs=jobs, events=events, provider_factory=lambda: deps.provider)

        deps = cls(settings, config or ReconcileConfig.from_env(), jobs, sqs, events, provider_factory,
                   overrides.pop("submit_deps_factory", None) or submit_deps, **overrides)
        holder["self"] = deps
        return deps


def reconciler_provider_client(settings: Settings) -> Any:
    """The queue client with tighter timeouts and fewer retries than the event flow's: a run has a deadline and
    checks it between jobs, so one unreachable provider must not eat the whole run. The key comes from the same
    secret, read the same way (Powertools parameters, cached, never logged)."""
    import boto3
    import httpx
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    from .provider import FalQueueClient, RetryPolicy
    from .settings import fal_key_from_secret

    endpoint = {"endpoint_url": settings.aws_endpoint_url} if settings.aws_endpoint_url else {}
    secrets = SecretsProvider(boto3_client=boto3.client("secretsmanager", **endpoint))
    raw = secrets.get(settings.need("FAL_KEY_SECRET_ARN"), max_age=300)
    key = fal_key_from_secret(raw if isinstance(raw, str) else bytes(raw).decode())
    return FalQueueClient(settings.provider_base_url, settings.provider_app_id, key,
                          retry=RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0),
                          timeout=httpx.Timeout(15.0, connect=5.0))


def parse_iso(stamp: str | None) -> float | None:
    """utc_now_iso() text → epoch seconds (None for a missing stamp)."""
    if not stamp:
        return None
    text = stamp.rstrip("Z")
    fmt = "%Y-%m-%dT%H:%M:%S.%f" if "." in text else "%Y-%m-%dT%H:%M:%S"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()


def reconcile(deps: ReconcileDeps, *, now: float | None = None, budget_seconds: float | None = None) -> ReconcileReport:
    """One pass over PENDING, SUBMITTED and STORING jobs (oldest first, via the status GSI)."""
    now = deps.clock() if now is None else now
    started = time.monotonic()
    report = ReconcileReport()
    cfg = deps.config
    plans: list[tuple[JobStatus, int, Callable[[JobRecord, float, ReconcileReport, ReconcileDeps], None]]] = [
        (JobStatus.PENDING, min(cfg.pending_retry_after_seconds, cfg.submit_outcome_deadline_seconds), _pending),
        (JobStatus.SUBMITTED, min(cfg.reconcile_after_seconds, cfg.max_job_age_seconds), _submitted),
        (JobStatus.STORING, cfg.storing_deadline_seconds, _storing),
    ]
    for status, min_age, action in plans:
        # created_at <= every later stamp, so "created before now - min_age" is a superset of what is due.
        before = utc_now_iso(now - min_age)
        for job in deps.jobs.iter_by_status(status, before=before, limit=cfg.batch_limit):
            if budget_seconds is not None and time.monotonic() - started > budget_seconds:
                report.out_of_time = True
                logger.warning("reconcile stopped: out of time", extra={"examined": report.examined})
                return report
            report.examined += 1
            logger.append_keys(job_id=job.job_id, request_id=job.request_id)
            try:
                action(job, now, report, deps)
            except Exception as exc:  # one bad job must not stop the run
                report.errors += 1
                report.note(job.job_id, "error")
                logger.exception("reconcile failed for a job", extra={"error": type(exc).__name__})
            finally:
                logger.remove_keys(_LOG_KEYS)
    acted = len([a for a in report.job_ids.values() if a not in ("waiting", "still_running", "error")])
    if acted:
        count(JOBS_RECONCILED, acted)
    logger.info("reconcile run done", extra={"report": report.model_dump(exclude={"job_ids"})})
    return report


# -- PENDING ---------------------------------------------------------------------------------------
def _pending(job: JobRecord, now: float, report: ReconcileReport, deps: ReconcileDeps) -> None:
    cfg = deps.config
    age = now - (parse_iso(job.created_at) or now)
    if job.request_id:  # the answer was recorded but the transition was not: treat as submitted
        _submitted(job, now, report, deps)
        return
    if not job.submit_attempted_at:
        if age > cfg.max_job_age_seconds:
            error = JobError(code=SUBMIT_NEVER_SENT, message="job was never sent to the provider and is too old")
            if _fail_from(deps, job, (JobStatus.PENDING,), error,
                          "attribute_not_exists(request_id) AND attribute_not_exists(submit_attempted_at)"):
                report.failed_never_sent += 1
                report.note(job.job_id, "failed_never_sent")
            return
        if age < cfg.pending_retry_after_seconds:
            report.note(job.job_id, "waiting")
            return
        _resubmit(job, report, deps)
        return
    since = now - (parse_iso(job.submit_attempted_at) or now)
    if since < cfg.submit_outcome_deadline_seconds:
        report.note(job.job_id, "waiting")
        return
    error = JobError(
        code=ErrorCode.SUBMIT_OUTCOME_UNKNOWN,
        message="the submit request got no usable answer and no webhook arrived; not resubmitted (a second "
                "request would be billed twice)",
        detail={"submit_attempted_at": job.submit_attempted_at, "attempts": job.attempts},
    )
    # Only while nothing arrived meanwhile: no request_id recorded, still PENDING (a webhook moves it on).
    if _fail_from(deps, job, (JobStatus.PENDING,), error, "attribute_not_exists(request_id)"):
        report.failed_submit_unknown += 1
        report.note(job.job_id, "failed_submit_unknown")


def _resubmit(job: JobRecord, report: ReconcileReport, deps: ReconcileDeps) -> None:
    """A PENDING job that was never sent: claim it, then run the submitter's own code path."""
    from .submission import ObjectRef, submit_object

    obj = ObjectRef(bucket=job.trigger.bucket, key=job.trigger.key, etag=job.trigger.etag,
                    sequencer=job.trigger.sequencer)
    if obj.job_id != job.job_id:
        error = JobError(code=ErrorCode.INPUT_INVALID, message="job id does not match its trigger; cannot resubmit",
                         detail={"trigger": job.trigger.model_dump()})
        if _fail_from(deps, job, (JobStatus.PENDING,), error, "attribute_not_exists(submit_attempted_at)"):
            report.note(job.job_id, "failed_bad_trigger")
        return
    # Claim: overlapping reconciler runs must not both send it (the submitter's own guard is per attempt).
    if not _claim(deps, job):
        report.note(job.job_id, "claimed_elsewhere")
        return
    outcome = submit_object(obj, deps.submit_deps)
    logger.info("never-sent job resubmitted", extra={"outcome": outcome.outcome, "status": outcome.status})
    report.resubmitted += 1
    report.note(job.job_id, f"resubmitted:{outcome.outcome}")


def _claim(deps: ReconcileDeps, job: JobRecord) -> bool:
    return deps.jobs._update(  # noqa: SLF001 - same package; a conditional stamp the store has no verb for
        job.job_id,
        "SET reconcile_claimed_at = :now",
        {":now": utc_now_iso(deps.clock()), ":stale": utc_now_iso(deps.clock() - 900)},
        allowed=(JobStatus.PENDING,),
        extra_condition="attribute_not_exists(submit_attempted_at) AND "
                        "(attribute_not_exists(reconcile_claimed_at) OR reconcile_claimed_at < :stale)",
    )


# -- SUBMITTED -------------------------------------------------------------------------------------
def _submitted(job: JobRecord, now: float, report: ReconcileReport, deps: ReconcileDeps) -> None:
    from .provider import ProviderError

    cfg = deps.config
    age = now - (parse_iso(job.created_at) or now)
    quiet = now - (parse_iso(job.submitted_at or job.updated_at) or now)
    too_old = age > cfg.max_job_age_seconds
    if quiet < cfg.reconcile_after_seconds and not too_old:
        report.note(job.job_id, "waiting")
        return
    assert job.request_id
    report.polled += 1
    try:
        state = deps.provider.status(job.endpoint, job.request_id, logs=False)
    except ProviderError as exc:
        logger.warning("status poll failed", extra={"error_code": exc.code, "status_code": exc.status_code})
        if too_old:
            _time_out(job, report, deps, reason=f"status poll failed: {exc.message}")
        else:
            report.poll_errors += 1
            report.note(job.job_id, "poll_error")
        return
    if not state.is_completed:
        if too_old:
            _time_out(job, report, deps, reason=f"still {state.status} at the provider")
        else:
            report.still_running += 1
            report.note(job.job_id, "still_running")
        return
    try:
        raw = deps.provider.result(job.endpoint, job.request_id)
    except ProviderError as exc:
        final = exc.status_code is not None and 400 <= exc.status_code < 500 and not exc.retryable
        if not final:
            logger.warning("result fetch failed", extra={"error_code": exc.code, "status_code": exc.status_code})
            if too_old:
                _time_out(job, report, deps, reason=f"result fetch failed: {exc.message}")
            else:
                report.poll_errors += 1
                report.note(job.job_id, "poll_error")
            return
        payload = {"detail": exc.detail} if exc.detail is not None else None
        _apply(job, {"request_id": job.request_id, "status": "ERROR", "payload": payload,
                     "error": f"Invalid status code: {exc.status_code}"}, report, deps)
        return
    _apply(job, {"request_id": job.request_id, "status": "OK", "payload": raw}, report, deps)


def _apply(job: JobRecord, body: dict[str, Any], report: ReconcileReport, deps: ReconcileDeps) -> None:
    """The missed webhook, applied through the webhook's own OK / ERROR code (no signature: we fetched it)."""
    from .api_models import WebhookPayload
    from .webhook_intake import _provider_error, _provider_ok

    payload = WebhookPayload.model_validate(body)
    current = deps.jobs.get(job.job_id)  # a webhook may have landed since the query
    if current is None or current.status not in (JobStatus.PENDING, JobStatus.SUBMITTED):
        report.note(job.job_id, "settled_meanwhile")
        return
    handler = _provider_ok if payload.is_ok else _provider_error
    outcome = handler(current, payload, deps.webhook_deps())
    logger.info("missed webhook recovered by polling", extra={"status": outcome.body.get("status")})
    report.recovered += 1
    report.note(job.job_id, f"recovered:{outcome.body.get('status')}")


def _time_out(job: JobRecord, report: ReconcileReport, deps: ReconcileDeps, *, reason: str) -> None:
    """Over the maximum age: cancel at the provider (best effort), then FAILED unless it moved on."""
    from .provider import ProviderError

    cancelled: bool | None = None
    if job.request_id:
        try:
            cancelled = deps.provider.cancel(job.endpoint, job.request_id)
        except ProviderError as exc:
            logger.warning("cancel at the provider failed", extra={"error_code": exc.code, "status_code": exc.status_code})
    error = JobError(
        code=JOB_TIMED_OUT,
        message=f"job exceeded the maximum age of {deps.config.max_job_age_seconds} s ({reason})",
        detail={"cancel_requested": cancelled, "request_id": job.request_id},
    )
    if cancelled:
        report.cancelled_at_provider += 1
    if _fail_from(deps, job, (job.status,), error):
        report.timed_out += 1
        report.note(job.job_id, "timed_out")
    else:
        report.note(job.job_id, "settled_meanwhile")


# -- STORING ---------------------------------------------------------------------------------------
def _storing(job: JobRecord, now: float, report: ReconcileReport, deps: ReconcileDeps) -> None:
    from .webhook_intake import _enqueue_copy

    cfg = deps.config
    quiet = now - (parse_iso(job.updated_at) or now)
    if quiet < cfg.storing_deadline_seconds:
        report.note(job.job_id, "waiting")
        return
    requeued = deps.jobs._update(  # noqa: SLF001 - optimistic: only if nothing touched the job since we read it
        job.job_id,
        "SET updated_at = :now ADD reconcile_requeues :one",
        {":now": utc_now_iso(deps.clock()), ":one": 1, ":seen": job.updated_at, ":max": cfg.max_copy_requeues},
        allowed=(JobStatus.STORING,),
        extra_condition="updated_at = :seen AND (attribute_not_exists(reconcile_requeues) OR reconcile_requeues < :max)",
    )
    if requeued:
        _enqueue_copy(job.job_id, job.request_id or "", deps.webhook_deps())
        report.copy_requeued += 1
        report.note(job.job_id, "copy_requeued")
        return
    error = JobError(
        code=RESULT_COPY_STUCK,
        message=f"the result copy did not finish after {cfg.max_copy_requeues} re-enqueues",
        detail={"attempts": job.attempts, "last_update": job.updated_at},
    )
    if _fail_from(deps, job, (JobStatus.STORING,), error, "updated_at = :seen", {":seen": job.updated_at}):
        report.failed_copy_stuck += 1
        report.note(job.job_id, "failed_copy_stuck")
    else:
        report.note(job.job_id, "settled_meanwhile")


# -- shared ----------------------------------------------------------------------------------------
def _fail_from(
    deps: ReconcileDeps,
    job: JobRecord,
    allowed: tuple[JobStatus, ...],
    error: JobError,
    extra_condition: str | None = None,
    values: dict[str, Any] | None = None,
) -> bool:
    """FAILED only from the state the reconciler saw (mark_failed allows any non-terminal state, which
    would let the reconciler overwrite a webhook that just moved the job on); publishes the failure event."""
    from .notifications import publish_job_event

    now = utc_now_iso(deps.clock())
    changed = deps.jobs._update(  # noqa: SLF001
        job.job_id,
        "SET #s = :new, completed_at = :now, updated_at = :now, #e = :err",
        {":new": JobStatus.FAILED.value, ":now": now, ":err": to_dynamo(error.model_dump(mode="json")), **(values or {})},
        allowed=allowed,
        extra_condition=extra_condition,
        names={"#e": "error"},
    )
    if not changed:
        logger.info("job moved on meanwhile; reconciler left it alone")
        return False
    count(JOBS_FAILED)
    logger.warning("job failed by the reconciler", extra={"error_code": error.code, "error": error.message})
    current = deps.jobs.get(job.job_id)
    if current is not None:
        try:
            publish_job_event(deps.events, deps.settings.event_bus_name, current)
        except PipelineError as exc:
            logger.error("failure event not published", extra={"error": exc.message})
    return True


__all__ = [
    "JOB_TIMED_OUT",
    "RESULT_COPY_STUCK",
    "SUBMIT_NEVER_SENT",
    "ReconcileConfig",
    "ReconcileDeps",
    "ReconcileReport",
    "parse_iso",
    "reconcile",
]
