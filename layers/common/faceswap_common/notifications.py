"""EventBridge events on job completion or failure, so other systems can react without polling."""

from __future__ import annotations

import json
from typing import Any

from .errors import ErrorCode, PipelineError
from .job_store import JobRecord, JobStatus

EVENT_SOURCE = "faceswap-pipeline"
DETAIL_COMPLETED = "Face Swap Job Completed"
DETAIL_FAILED = "Face Swap Job Failed"


def detail_type_for(status: JobStatus) -> str:
    if status is JobStatus.COMPLETED:
        return DETAIL_COMPLETED
    if status in (JobStatus.FAILED, JobStatus.CANCELLED):
        return DETAIL_FAILED
    raise ValueError(f"no event for a job in state {status.value}")


def publish_job_event(events_client: Any, bus_name: str, job: JobRecord) -> str:
    """PutEvents with the job summary as detail; returns the event id. Raises PipelineError on rejection."""
    entry = {
        "Source": EVENT_SOURCE,
        "DetailType": detail_type_for(job.status),
        "Detail": json.dumps(job.summary(), separators=(",", ":")),
        "EventBusName": bus_name,
        "Resources": [],
    }
    response = events_client.put_events(Entries=[entry])
    result = (response.get("Entries") or [{}])[0]
    if response.get("FailedEntryCount", 0) or "EventId" not in result:
        raise PipelineError(
            ErrorCode.EVENT_PUBLISH_FAILED,
            f"EventBridge rejected the event: {result.get('ErrorCode')} {result.get('ErrorMessage')}",
            {"job_id": job.job_id},
        )
    return str(result["EventId"])
