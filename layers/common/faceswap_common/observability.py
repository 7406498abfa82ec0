"""One Logger and one Metrics for the whole package, created once at import.

Why: every module and handler must log to the same structured logger (job_id and request_id appended once
reach every line) and flush one metrics set per invocation. Tracer is deliberately absent: importing it pulls
in aws_xray_sdk (~0.7 s of cold start, even with tracing disabled) and the pipeline does not use X-Ray.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME") or "faceswap"
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "FaceSwapPipeline"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)

# Metric names (dashboards and alarms use these strings).
JOBS_SUBMITTED = "JobsSubmitted"
JOBS_COMPLETED = "JobsCompleted"
JOBS_FAILED = "JobsFailed"
PROCESSING_TIME = "ProcessingTime"
WEBHOOKS_REJECTED = "WebhooksRejected"


def count(name: str, value: float = 1) -> None:
    """Add to a count metric (flushed by `metrics.log_metrics` on the handler)."""
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=value)


def bind(**keys: object) -> None:
    """Append keys (job_id, request_id, ...) to every following log line of this invocation."""
    logger.append_keys(**{k: v for k, v in keys.items() if v is not None})


__all__ = [
    "JOBS_COMPLETED",
    "JOBS_FAILED",
    "JOBS_SUBMITTED",
    "PROCESSING_TIME",
    "WEBHOOKS_REJECTED",
    "bind",
    "count",
    "logger",
    "metrics",
    "milliseconds",
]
