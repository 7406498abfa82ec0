"""The job record in DynamoDB and its state machine.

PENDING → SUBMITTED → STORING → COMPLETED; any non-terminal state → FAILED or CANCELLED. A webhook may
arrive before the submit answer was recorded, so PENDING → STORING is allowed too. Every transition is
a conditional update: duplicate or late events are no-ops (the method returns False, nothing written).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import aws_clients
from .api_models import Endpoint
from .errors import ErrorCode, PipelineError

STATUS_INDEX = "status-created_at"


class JobStatus(str, Enum):
    PENDING = "PENDING"
    SUBMITTED = "SUBMITTED"
    STORING = "STORING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})
NON_TERMINAL = (JobStatus.PENDING, JobStatus.SUBMITTED, JobStatus.STORING)


class TransitionRejected(PipelineError):
    """For callers that prefer an exception to the False a rejected transition returns."""

    def __init__(self, job_id: str, target: JobStatus, current: JobStatus | None = None) -> None:
        super().__init__(
            ErrorCode.TRANSITION_REJECTED,
            f"job {job_id}: transition to {target.value} not allowed from {current.value if current else 'unknown'}",
            {"job_id": job_id, "target": target.value, "current": current.value if current else None},
        )


class TriggerRef(BaseModel):
    bucket: str
    key: str
    etag: str | None = None
    sequencer: str | None = None


class OutputRef(BaseModel):
    bucket: str
    key: str
    size: int
    content_type: str


class JobError(BaseModel):
    code: str
    message: str
    detail: Any = None

    @classmethod
    def from_exception(cls, exc: PipelineError) -> JobError:
        return cls(code=exc.code, message=exc.message, detail=exc.detail)


class JobRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str
    status: JobStatus
    endpoint: Endpoint
    trigger: TriggerRef
    inputs: dict[str, Any] = Field(default_factory=dict)
    request_id: str | None = None
    created_at: str
    updated_at: str
    submitted_at: str | None = None
    submit_attempted_at: str | None = None
    completed_at: str | None = None
    attempts: int = 0
    result: dict[str, Any] | None = None  # provider output (result URL etc.) kept for the copy worker
    reconcile_claimed_at: str | None = None  # written by the reconciler (flow logic), read here for visibility
    reconcile_requeues: int = 0
    output: OutputRef | None = None
    processing_time_ms: int | None = None
    warning: str | None = None
    error: JobError | None = None
    expires_at: int

    def summary(self) -> dict[str, Any]:
        """What events and listings show (no inputs' presigned URLs ever exist on the record)."""
        return self.model_dump(
            mode="json",
            include={
                "job_id", "status", "endpoint", "trigger", "request_id", "created_at", "submitted_at",
                "completed_at", "output", "processing_time_ms", "warning", "error",
            },
        )


def utc_now_iso(now: float | None = None) -> str:
    """ISO-8601 UTC with milliseconds and 'Z': sorts lexicographically (the GSI range key)."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def make_job_id(bucket: str, key: str, version: str | None) -> str:
    """Deterministic job id from bucket, key and etag/sequencer: a duplicate S3 event is the same job."""
    digest = hashlib.sha256(f"{bucket}\x00{key}\x00{version or ''}".encode()).hexdigest()
    return digest[:32]


def to_dynamo(value: Any) -> Any:
    """JSON-able value → DynamoDB-safe (floats become Decimal)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    return value


class JobStore:
    """Conditional writes on the jobs table; every mark_* returns True if it changed the record."""

    def __init__(
        self,
        table_name: str,
        dynamodb: Any = None,
        *,
        ttl_days: int = 30,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table_name = table_name
        self._dynamodb = dynamodb
        self._table_obj: Any = None
        self._ttl_days = ttl_days
        self._clock = clock

    @property
    def _table(self) -> Any:
        """The boto3 Table, built on first use (not at cold start: see aws_clients for why)."""
        if self._table_obj is None:
            resource = aws_clients.unwrap(self._dynamodb) if self._dynamodb is not None else None
            if resource is None:
                resource = aws_clients.resource("dynamodb")
            elif not hasattr(resource, "Table"):  # a client was passed: wrap it in a resource with its config
                resource = aws_clients.resource(
                    "dynamodb", resource.meta.endpoint_url, region_name=resource.meta.region_name
                )
            self._table_obj = resource.Table(self._table_name)
        return self._table_obj

    @_table.setter
    def _table(self, table: Any) -> None:
        self._table_obj = table

    # -- reads ------------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord | None:
        item = self._table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        return JobRecord.model_validate(from_dynamo(item)) if item else None

    def list_by_status(
        self,
        status: JobStatus,
        since: str | None = None,
        limit: int = 100,
        *,
        before: str | None = None,
    ) -> list[JobRecord]:
        """Oldest first, via the GSI status-created_at; `since`/`before` bound created_at (ISO strings)."""
        return list(self.iter_by_status(status, since=since, before=before, limit=limit))

    def iter_by_status(
        self, status: JobStatus, *, since: str | None = None, before: str | None = None, limit: int | None = None
    ) -> Iterator[JobRecord]:
        condition = "#s = :s"
        values: dict[str, Any] = {":s": status.value}
        if since and before:
            condition += " AND created_at BETWEEN :a AND :b"
            values.update({":a": since, ":b": before})
        elif since:
            condition += " AND created_at >= :a"
            values[":a"] = since
        elif before:
            condition += " AND created_at <= :b"
            values[":b"] = before
        kwargs: dict[str, Any] = {
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": values,
        }
        yielded = 0
        while True:
            if limit is not None:
                kwargs["Limit"] = max(1, min(100, limit - yielded))
            page = self._table.query(**kwargs)
            for item in page.get("Items", []):
                yield JobRecord.model_validate(from_dynamo(item))
                yielded += 1
                if limit is not None and yielded >= limit:
                    return
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    # -- writes -----------------------------------------------------------------------------------
    def create_pending(
        self,
        job_id: str,
        endpoint: Endpoint,
        trigger: TriggerRef | Mapping[str, Any],
        inputs: Mapping[str, Any],
    ) -> bool:
        """Write a PENDING record; False (nothing written) if this job_id exists already."""
        now = self._clock()
        stamp = utc_now_iso(now)
        record = JobRecord(
            job_id=job_id,
            status=JobStatus.PENDING,
            endpoint=endpoint,
            trigger=TriggerRef.model_validate(trigger) if not isinstance(trigger, TriggerRef) else trigger,
            inputs=dict(inputs),
            created_at=stamp,
            updated_at=stamp,
            expires_at=int(now) + self._ttl_days * 86400,
        )
        item = to_dynamo(record.model_dump(mode="json", exclude_none=True))
        try:
            self._table.put_item(Item=item, ConditionExpression="attribute_not_exists(job_id)")
        except Exception as exc:  # botocore's ClientError, matched by code: botocore stays unimported until used
            if _conditional(exc):
                return False
            raise
        return True

    def mark_submit_attempt(self, job_id: str, *, retry: bool = False) -> bool:
        """Before the submit POST: stamp submit_attempted_at and count the attempt (PENDING only).

        The first attempt is exclusive (only one caller may stamp a job never attempted), so two submitters that
        both read PENDING, e.g. a late Lambda retry and the reconciler, cannot both POST. ``retry`` is for the
        same caller trying again after the provider refused the connection before anything was sent.
        """
        return self._update(
            job_id,
            "SET submit_attempted_at = :now, updated_at = :now ADD attempts :one",
            {":now": self._now(), ":one": 1},
            allowed=(JobStatus.PENDING,),
            extra_condition=None if retry else "attribute_not_exists(submit_attempted_at)",
        )

    def mark_submitted(self, job_id: str, request_id: str) -> bool:
        """PENDING → SUBMITTED. If the job already moved on (webhook first), only fill a missing request_id."""
        now = self._now()
        if self._update(
            job_id,
            "SET #s = :new, request_id = :rid, submitted_at = :now, updated_at = :now",
            {":new": JobStatus.SUBMITTED.value, ":rid": request_id, ":now": now},
            allowed=(JobStatus.PENDING,),
        ):
            return True
        self._update(
            job_id,
            "SET request_id = :rid, submitted_at = if_not_exists(submitted_at, :now)",
            {":rid": request_id, ":now": now},
            allowed=None,
            extra_condition="attribute_not_exists(request_id)",
        )
        return False

    def mark_storing(self, job_id: str, request_id: str, result: Mapping[str, Any] | None) -> bool:
        """PENDING/SUBMITTED → STORING with the provider's output; request_id must match if already set."""
        values = {":new": JobStatus.STORING.value, ":rid": request_id, ":now": self._now(), ":res": to_dynamo(dict(result or {}))}
        return self._update(
            job_id,
            "SET #s = :new, request_id = :rid, #r = :res, updated_at = :now, submitted_at = if_not_exists(submitted_at, :now)",
            values,
            allowed=(JobStatus.PENDING, JobStatus.SUBMITTED),
            extra_condition="(attribute_not_exists(request_id) OR request_id = :rid)",
            names={"#r": "result"},
        )

    def mark_copy_attempt(self, job_id: str) -> bool:
        """Count a result-copy attempt (STORING only), so the reconciler can give up after N."""
        return self._update(
            job_id, "SET updated_at = :now ADD attempts :one", {":now": self._now(), ":one": 1}, allowed=(JobStatus.STORING,)
        )

    def mark_completed(
        self,
        job_id: str,
        output: OutputRef | Mapping[str, Any],
        processing_time_ms: int | float | None = None,
        warning: str | None = None,
    ) -> bool:
        """STORING → COMPLETED, once the output object exists whole."""
        out = output if isinstance(output, OutputRef) else OutputRef.model_validate(output)
        now = self._now()
        expr = "SET #s = :new, #o = :out, completed_at = :now, updated_at = :now"
        values: dict[str, Any] = {":new": JobStatus.COMPLETED.value, ":out": to_dynamo(out.model_dump()), ":now": now}
        if processing_time_ms is not None:
            expr += ", processing_time_ms = :ptm"
            values[":ptm"] = int(round(processing_time_ms))
        if warning is not None:
            expr += ", warning = :w"
            values[":w"] = warning
        return self._update(job_id, expr, values, allowed=(JobStatus.STORING,), names={"#o": "output"})

    def mark_failed(
        self,
        job_id: str,
        error: JobError | PipelineError | Mapping[str, Any],
        *,
        expected: tuple[JobStatus, ...] = NON_TERMINAL,
        unchanged_since: str | None = None,
    ) -> bool:
        """Non-terminal → FAILED with {code, message, detail}.

        `expected` narrows the states it may fail from and `unchanged_since` (an updated_at the caller read)
        makes it optimistic, so a reconciler never overwrites a webhook that moved the job on meanwhile.
        """
        return self._finish(job_id, JobStatus.FAILED, error, expected, unchanged_since)

    def mark_cancelled(
        self,
        job_id: str,
        error: JobError | PipelineError | Mapping[str, Any] | None = None,
        *,
        expected: tuple[JobStatus, ...] = NON_TERMINAL,
        unchanged_since: str | None = None,
    ) -> bool:
        """Non-terminal → CANCELLED (optionally with the reason); same guards as mark_failed."""
        return self._finish(job_id, JobStatus.CANCELLED, error, expected, unchanged_since)

    def update_if(
        self,
        job_id: str,
        expression: str,
        values: dict[str, Any],
        *,
        allowed: tuple[JobStatus, ...] | None,
        extra_condition: str | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        """Escape hatch for flow logic (e.g. reconciler claims): a conditional UpdateExpression on one job.

        `#s` is bound to `status`; `allowed` adds `#s IN (...)`; returns False when the condition fails.
        Values must be DynamoDB-safe (use to_dynamo for floats).
        """
        return self._update(job_id, expression, values, allowed=allowed, extra_condition=extra_condition, names=names)

    def require(self, changed: bool, job_id: str, target: JobStatus) -> None:
        """Turn a False from a mark_* into TransitionRejected (with the current state)."""
        if not changed:
            current = self.get(job_id)
            raise TransitionRejected(job_id, target, current.status if current else None)

    # -- helpers ----------------------------------------------------------------------------------
    def _finish(
        self, job_id: str, status: JobStatus, error: Any, expected: tuple[JobStatus, ...], unchanged_since: str | None
    ) -> bool:
        if not set(expected) <= set(NON_TERMINAL):
            raise ValueError("a terminal job cannot be failed or cancelled")
        now = self._now()
        expr = "SET #s = :new, completed_at = :now, updated_at = :now"
        values: dict[str, Any] = {":new": status.value, ":now": now}
        if error is not None:
            if isinstance(error, PipelineError):
                err = JobError.from_exception(error)
            elif isinstance(error, JobError):
                err = error
            else:
                err = JobError.model_validate(error)
            expr += ", #e = :err"
            values[":err"] = to_dynamo(err.model_dump(mode="json"))
        extra = None
        if unchanged_since is not None:
            extra = "updated_at = :seen"
            values[":seen"] = unchanged_since
        return self._update(
            job_id, expr, values, allowed=expected, extra_condition=extra,
            names={"#e": "error"} if error is not None else None,
        )

    def _now(self) -> str:
        return utc_now_iso(self._clock())

    def _update(
        self,
        job_id: str,
        expression: str,
        values: dict[str, Any],
        *,
        allowed: tuple[JobStatus, ...] | None,
        extra_condition: str | None = None,
        names: dict[str, str] | None = None,
    ) -> bool:
        conditions = ["attribute_exists(job_id)"]
        attr_names = {"#s": "status"} if (allowed or "#s" in expression) else {}
        attr_names.update(names or {})
        if allowed:
            keys = []
            for index, status in enumerate(allowed):
                values[f":ok{index}"] = status.value
                keys.append(f":ok{index}")
            conditions.append(f"#s IN ({', '.join(keys)})")
        if extra_condition:
            conditions.append(extra_condition)
        kwargs: dict[str, Any] = {
            "Key": {"job_id": job_id},
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
        }
        if attr_names:
            kwargs["ExpressionAttributeNames"] = attr_names
        try:
            self._table.update_item(**kwargs)
        except Exception as exc:  # botocore's ClientError, matched by code: botocore stays unimported until used
            if _conditional(exc):
                return False
            raise
        return True


def _conditional(exc: BaseException) -> bool:
    return aws_clients.error_code(exc) == "ConditionalCheckFailedException"
