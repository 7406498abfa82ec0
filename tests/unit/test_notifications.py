"""EventBridge events for finished jobs, delivered through a rule to a queue (moto)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from faceswap_common.api_models import Endpoint
from faceswap_common.errors import PipelineError
from faceswap_common.job_store import JobError, JobRecord, JobStatus, OutputRef, TriggerRef
from faceswap_common.notifications import publish_job_event

from .support import BUCKET


def job(status: JobStatus, **extra: Any) -> JobRecord:
    return JobRecord(
        job_id="j1", status=status, endpoint=Endpoint.VIDEO,
        trigger=TriggerRef(bucket=BUCKET, key="inbox/alice/clip.mp4", etag="e"),
        inputs={"source_face_url": f"s3://{BUCKET}/faces/alice.jpg"}, request_id="req-1",
        created_at="2026-11-23T22:00:00.000Z", updated_at="2026-11-23T22:01:00.000Z", expires_at=1, **extra,
    )


@pytest.fixture
def events_and_queue(aws: None) -> tuple[Any, Any, str]:
    events = boto3.client("events", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.create_queue(QueueName="events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="faceswap", EventPattern=json.dumps({"source": ["faceswap-pipeline"]}), EventBusName="default")
    events.put_targets(Rule="faceswap", EventBusName="default", Targets=[{"Id": "q", "Arn": arn}])
    return events, sqs, url


def received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_completed_event(events_and_queue: tuple[Any, Any, str]) -> None:
    events, sqs, url = events_and_queue
    record = job(JobStatus.COMPLETED, completed_at="2026-11-23T22:02:00.000Z", processing_time_ms=1500,
                 warning="FPS capped at 25",
                 output=OutputRef(bucket=BUCKET, key="outputs/j1/result.mp4", size=10, content_type="video/mp4"))
    assert publish_job_event(events, "default", record)
    (event,) = received(sqs, url)
    assert event["source"] == "faceswap-pipeline" and event["detail-type"] == "Face Swap Job Completed"
    detail = event["detail"]
    assert detail["job_id"] == "j1" and detail["status"] == "COMPLETED" and detail["endpoint"] == "faceswapvideo"
    assert detail["output"]["key"] == "outputs/j1/result.mp4" and detail["processing_time_ms"] == 1500
    assert detail["warning"] == "FPS capped at 25" and detail["trigger"]["key"] == "inbox/alice/clip.mp4"
    assert "inputs" not in detail


@pytest.mark.parametrize("status", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_failed_event(events_and_queue: tuple[Any, Any, str], status: JobStatus) -> None:
    events, sqs, url = events_and_queue
    record = job(status, error=JobError(code="PROVIDER_FAILED", message="no face", detail=[{"loc": ["body"]}]))
    publish_job_event(events, "default", record)
    (event,) = received(sqs, url)
    assert event["detail-type"] == "Face Swap Job Failed"
    assert event["detail"]["error"]["code"] == "PROVIDER_FAILED" and event["detail"]["status"] == status.value


def test_no_event_for_unfinished_jobs(events_and_queue: tuple[Any, Any, str]) -> None:
    events, _, _ = events_and_queue
    with pytest.raises(ValueError):
        publish_job_event(events, "default", job(JobStatus.SUBMITTED))


def test_rejected_entry_raises() -> None:
    class Rejecting:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "x"}]}

    with pytest.raises(PipelineError) as info:
        publish_job_event(Rejecting(), "default", job(JobStatus.FAILED))
    assert info.value.code == "EVENT_PUBLISH_FAILED"
