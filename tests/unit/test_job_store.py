"""Job store: conditional transitions, duplicates as no-ops, webhook-before-submit, GSI listing."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest

from faceswap_common.api_models import Endpoint
from faceswap_common.errors import PipelineError
from faceswap_common.job_store import (
    JobError,
    JobStatus,
    JobStore,
    TransitionRejected,
    TriggerRef,
    make_job_id,
    utc_now_iso,
)

from .support import BUCKET, TABLE

TRIGGER = TriggerRef(bucket=BUCKET, key="inbox/alice/clip.mp4", etag="e1", sequencer="0055")
INPUTS = {"source_face_url": f"s3://{BUCKET}/faces/alice.jpg", "target_video_url": f"s3://{BUCKET}/inbox/alice/clip.mp4",
          "enable_occlusion_prevention": False}
RESULT = {"video": {"url": "https://v3.fal.media/files/x.mp4", "content_type": "video/mp4"}, "processing_time_ms": 1234.5}
OUTPUT = {"bucket": BUCKET, "key": "outputs/j1/result.mp4", "size": 1000, "content_type": "video/mp4"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_760_000_000.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def store(ddb: Any) -> JobStore:
    return JobStore(TABLE, ddb, ttl_days=30, clock=Clock())


def new_job(store: JobStore, job_id: str = "j1") -> None:
    assert store.create_pending(job_id, Endpoint.VIDEO, TRIGGER, INPUTS) is True


def test_create_pending_record(store: JobStore) -> None:
    new_job(store)
    job = store.get("j1")
    assert job is not None
    assert job.status is JobStatus.PENDING and job.endpoint is Endpoint.VIDEO
    assert job.trigger == TRIGGER and job.inputs == INPUTS
    assert job.created_at == job.updated_at and job.created_at.endswith("Z")
    assert job.expires_at == int(1_760_000_001) + 30 * 86400
    assert job.attempts == 0 and job.request_id is None
    assert store.get("nope") is None


def test_duplicate_create_is_a_no_op(store: JobStore) -> None:
    job_id = make_job_id(BUCKET, TRIGGER.key, TRIGGER.etag)
    assert job_id == make_job_id(BUCKET, TRIGGER.key, TRIGGER.etag)
    assert job_id != make_job_id(BUCKET, TRIGGER.key, "e2")  # an overwrite is a new job
    assert store.create_pending(job_id, Endpoint.VIDEO, TRIGGER, INPUTS) is True
    store.mark_submitted(job_id, "req-1")
    assert store.create_pending(job_id, Endpoint.IMAGE, TRIGGER, {}) is False
    job = store.get(job_id)
    assert job.status is JobStatus.SUBMITTED and job.endpoint is Endpoint.VIDEO and job.inputs == INPUTS


def test_happy_path(store: JobStore) -> None:
    new_job(store)
    assert store.mark_submit_attempt("j1") is True
    assert store.mark_submitted("j1", "req-1") is True
    job = store.get("j1")
    assert job.status is JobStatus.SUBMITTED and job.request_id == "req-1" and job.submitted_at
    assert job.submit_attempted_at and job.attempts == 1
    assert store.mark_storing("j1", "req-1", RESULT) is True
    job = store.get("j1")
    assert job.status is JobStatus.STORING and job.result == RESULT  # floats survive via Decimal
    assert store.mark_completed("j1", OUTPUT, processing_time_ms=1234.5, warning="FPS capped at 25") is True
    job = store.get("j1")
    assert job.status is JobStatus.COMPLETED and job.completed_at
    assert job.output.model_dump() == OUTPUT
    assert job.processing_time_ms == 1234 and job.warning == "FPS capped at 25"
    summary = job.summary()
    assert summary["status"] == "COMPLETED" and summary["output"]["key"] == OUTPUT["key"] and "inputs" not in summary


def test_duplicates_and_late_events_are_no_ops(store: JobStore) -> None:
    new_job(store)
    store.mark_submitted("j1", "req-1")
    assert store.mark_submitted("j1", "req-1") is False
    assert store.mark_storing("j1", "req-1", RESULT) is True
    assert store.mark_storing("j1", "req-1", RESULT) is False  # webhook delivered twice
    assert store.mark_completed("j1", OUTPUT) is True
    before = store.get("j1")
    assert store.mark_completed("j1", OUTPUT) is False
    assert store.mark_failed("j1", JobError(code="X", message="late")) is False
    assert store.mark_cancelled("j1") is False
    assert store.mark_storing("j1", "req-1", RESULT) is False
    assert store.get("j1") == before  # nothing written


def test_request_id_mismatch_rejected(store: JobStore) -> None:
    new_job(store)
    store.mark_submitted("j1", "req-1")
    assert store.mark_storing("j1", "req-OTHER", RESULT) is False
    assert store.get("j1").status is JobStatus.SUBMITTED


def test_webhook_before_submit_answer(store: JobStore) -> None:
    new_job(store)
    assert store.mark_storing("j1", "req-1", RESULT) is True  # PENDING → STORING
    assert store.mark_submitted("j1", "req-1") is False  # late submit answer does not clobber
    job = store.get("j1")
    assert job.status is JobStatus.STORING and job.request_id == "req-1" and job.submitted_at


def test_late_submit_records_missing_request_id(store: JobStore) -> None:
    new_job(store)
    assert store.mark_failed("j1", PipelineError("SUBMIT_OUTCOME_UNKNOWN", "timeout", {"a": 1.5})) is True
    assert store.mark_submitted("j1", "req-9") is False
    job = store.get("j1")
    assert job.status is JobStatus.FAILED and job.request_id == "req-9"
    assert job.error.code == "SUBMIT_OUTCOME_UNKNOWN" and job.error.detail == {"a": 1.5}
    assert store.mark_submitted("j1", "req-10") is False
    assert store.get("j1").request_id == "req-9"  # an existing request_id is never overwritten


def test_failed_and_cancelled_from_any_non_terminal(store: JobStore) -> None:
    for index, steps in enumerate([[], ["submit"], ["submit", "store"]]):
        job_id = f"f{index}"
        new_job(store, job_id)
        if "submit" in steps:
            store.mark_submitted(job_id, "r")
        if "store" in steps:
            store.mark_storing(job_id, "r", RESULT)
        assert store.mark_failed(job_id, {"code": "PROVIDER_FAILED", "message": "422", "detail": [{"loc": ["x"]}]})
        assert store.get(job_id).status is JobStatus.FAILED
        job_id = f"c{index}"
        new_job(store, job_id)
        if "submit" in steps:
            store.mark_submitted(job_id, "r")
        assert store.mark_cancelled(job_id, {"code": "TOO_OLD", "message": "max age"}) is True
        assert store.get(job_id).status is JobStatus.CANCELLED


def test_not_allowed_transitions(store: JobStore) -> None:
    new_job(store)
    assert store.mark_completed("j1", OUTPUT) is False  # PENDING → COMPLETED skips the copy
    assert store.mark_copy_attempt("j1") is False
    assert store.mark_submitted("missing", "r") is False
    assert store.mark_failed("missing", {"code": "X", "message": "m"}) is False
    assert store.get("missing") is None  # a conditional update never creates an item
    with pytest.raises(TransitionRejected) as info:
        store.require(store.mark_completed("j1", OUTPUT), "j1", JobStatus.COMPLETED)
    assert info.value.detail["current"] == "PENDING"
    store.mark_submitted("j1", "r")
    assert store.mark_submit_attempt("j1") is False


def test_copy_attempts_counted(store: JobStore) -> None:
    new_job(store)
    store.mark_storing("j1", "r", RESULT)
    assert store.mark_copy_attempt("j1") and store.mark_copy_attempt("j1")
    assert store.get("j1").attempts == 2


def test_list_by_status_paginates_oldest_first(store: JobStore) -> None:
    for index in range(7):
        new_job(store, f"p{index}")
    for index in range(3):
        new_job(store, f"s{index}")
        store.mark_submitted(f"s{index}", f"r{index}")
    pending = store.list_by_status(JobStatus.PENDING, limit=100)
    assert [j.job_id for j in pending] == [f"p{i}" for i in range(7)]
    assert [j.job_id for j in store.list_by_status(JobStatus.PENDING, limit=3)] == ["p0", "p1", "p2"]
    middle = pending[3].created_at
    assert [j.job_id for j in store.list_by_status(JobStatus.PENDING, since=middle)] == ["p3", "p4", "p5", "p6"]
    assert [j.job_id for j in store.list_by_status(JobStatus.PENDING, before=middle)] == ["p0", "p1", "p2", "p3"]
    assert len(list(store.iter_by_status(JobStatus.SUBMITTED))) == 3
    assert store.list_by_status(JobStatus.COMPLETED) == []


def test_list_follows_last_evaluated_key(store: JobStore) -> None:
    for index in range(5):
        new_job(store, f"p{index}")
    calls: list[dict[str, Any]] = []
    table = store._table
    real_query = table.query

    def small_pages(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_query(**{**kwargs, "Limit": 2})

    store._table = type("T", (), {"query": staticmethod(small_pages)})()
    assert [j.job_id for j in store.list_by_status(JobStatus.PENDING)] == [f"p{i}" for i in range(5)]
    assert len(calls) == 3 and "ExclusiveStartKey" in calls[1]


def test_accepts_a_client(ddb: Any) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1")
    store = JobStore(TABLE, client)
    new_job(store)
    raw = ddb.Table(TABLE).get_item(Key={"job_id": "j1"})["Item"]
    assert isinstance(raw["expires_at"], Decimal)  # a number attribute: DynamoDB TTL needs it
    assert raw["status"] == "PENDING"


def test_iso_timestamps_sort() -> None:
    assert utc_now_iso(0) == "1970-01-01T00:00:00.000Z"
    assert utc_now_iso(1.5) < utc_now_iso(10)


def test_guarded_failure_for_the_reconciler(store: JobStore) -> None:
    new_job(store)
    store.mark_submitted("j1", "r")
    seen = store.get("j1")
    store.mark_storing("j1", "r", RESULT)  # the webhook lands meanwhile
    err = {"code": "JOB_TIMED_OUT", "message": "no webhook"}
    assert store.mark_failed("j1", err, expected=(JobStatus.SUBMITTED,)) is False
    assert store.mark_failed("j1", err, unchanged_since=seen.updated_at) is False
    assert store.get("j1").status is JobStatus.STORING
    current = store.get("j1")
    assert store.mark_cancelled("j1", err, expected=(JobStatus.STORING,), unchanged_since=current.updated_at) is True
    with pytest.raises(ValueError):
        store.mark_failed("j1", err, expected=(JobStatus.COMPLETED,))


def test_update_if(store: JobStore) -> None:
    new_job(store)
    claim = dict(expression="SET reconcile_claimed_at = :now", values={":now": "2026-01-01T00:00:00.000Z"},
                 allowed=(JobStatus.PENDING,), extra_condition="attribute_not_exists(reconcile_claimed_at)")
    assert store.update_if("j1", claim["expression"], dict(claim["values"]), allowed=claim["allowed"],
                           extra_condition=claim["extra_condition"]) is True
    assert store.update_if("j1", claim["expression"], dict(claim["values"]), allowed=claim["allowed"],
                           extra_condition=claim["extra_condition"]) is False
    assert store.get("j1").reconcile_claimed_at == "2026-01-01T00:00:00.000Z"
