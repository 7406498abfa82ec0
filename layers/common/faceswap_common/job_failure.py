"""Ending a job FAILED the same way from every part of the flow (submit, webhook, result copy)."""

from __future__ import annotations

from typing import Any

from .job_store import JobError, JobRecord, JobStore
from .observability import JOBS_FAILED, count, logger


def fail_job(jobs: JobStore, events: Any, bus_name: str, job_id: str, error: JobError) -> JobRecord | None:
    """Job → FAILED if it is still running; only the call that made the change counts it and publishes the
    "Face Swap Job Failed" event, so duplicate or late failures announce nothing twice. Returns the record now."""
    from .notifications import publish_job_event

    changed = jobs.mark_failed(job_id, error)
    logger.warning("job failed", extra={"error_code": error.code, "error": error.message, "detail": error.detail})
    current = jobs.get(job_id)
    if changed and current is not None:
        count(JOBS_FAILED)
        publish_job_event(events, bus_name, current)
    return current
