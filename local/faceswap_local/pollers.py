"""The event sources Lambda would run for us: the S3 notification relay, the SQS worker, the schedule.

- ``S3EventRelay`` long-polls the queue moto sends the bucket's notifications to and invokes SubmitJob with the
  event real S3 sends (asynchronous invocation: 2 retries, then the on-failure queue).
- ``SqsWorker`` is the SQS event source mapping of StoreResult: batches as SQS records, deletes what succeeded,
  honours ``batchItemFailures`` (ReportBatchItemFailures) and leaves failed messages for a retry.
- ``ScheduleTimer`` invokes the reconciler with a scheduled event every N seconds.
"""

from __future__ import annotations

import json
import logging
from abc import ABC, abstractmethod
import threading
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from faceswap_local import logs
from faceswap_local.events import s3_events_from_moto_message, scheduled_event, sqs_event
from faceswap_local.lambda_host import InvocationError, LocalFunction

log = logging.getLogger("local.pollers")


class _Loop(ABC):
    """A daemon thread that calls ``step`` until stopped; a failing step is logged, never fatal."""

    name = "loop"

    def __init__(self) -> None:
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def _run(self) -> None:
        logs.set_component(self.name)
        while not self._stop.is_set():
            try:
                self.step()
            except Exception as exc:  # keep the stack alive; the log says what broke
                if self._stop.is_set():
                    break
                log.warning("%s: %s: %s", self.name, type(exc).__name__, exc)
                self._stop.wait(1.0)

    @abstractmethod
    def step(self) -> None:
        """One round of work (a long poll, a tick)."""

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)


class S3EventRelay(_Loop):
    """moto's S3→SQS notifications → SubmitJob invoked with real S3 events."""

    name = "relay"

    def __init__(self, sqs: Any, queue_url: str, function: LocalFunction | None, failure_queue_url: str | None,
                 retries: int = 2, retry_delay: float = 1.0, wait_seconds: int = 1) -> None:
        super().__init__()
        self.sqs, self.queue_url, self.function = sqs, queue_url, function
        self.failure_queue_url, self.retries, self.retry_delay = failure_queue_url, retries, retry_delay
        self.wait_seconds = wait_seconds
        self.delivered = 0

    def step(self) -> None:
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=self.wait_seconds)
        for message in answer.get("Messages", []):
            for event in s3_events_from_moto_message(message["Body"]):
                self._deliver(event)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _deliver(self, event: Mapping[str, Any]) -> None:
        record = event["Records"][0]
        log.info("s3:%s s3://%s/%s", record["eventName"], record["s3"]["bucket"]["name"], record["s3"]["object"]["key"])
        if self.function is None:
            log.warning("SubmitJob is not loaded; event dropped")
            return
        error = ""
        for attempt in range(self.retries + 1):
            try:
                self.function.invoke(event)
                self.delivered += 1
                return
            except InvocationError as exc:
                error = str(exc)
                if attempt < self.retries:
                    log.warning("attempt %d failed; Lambda retries asynchronous invocations", attempt + 1)
                    time.sleep(self.retry_delay * (attempt + 1))
        if self.failure_queue_url:
            self.sqs.send_message(QueueUrl=self.failure_queue_url, MessageBody=json.dumps(_on_failure_record(event, error)))
            log.error("SubmitJob failed %d times; event sent to the on-failure queue", self.retries + 1)


def _on_failure_record(event: Mapping[str, Any], error: str) -> dict[str, Any]:
    """What Lambda's OnFailure destination receives for an asynchronous invocation that kept failing."""
    return {
        "version": "1.0",
        "timestamp": datetime.now(timezone.utc).isoformat(),
        "requestContext": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:submit_job:$LATEST",
                           "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": {"errorMessage": error},
    }


class SqsWorker(_Loop):
    """The SQS event source mapping of a function with ReportBatchItemFailures."""

    name = "consumer"

    def __init__(self, sqs: Any, queue_url: str, function: LocalFunction | None, region: str,
                 batch_size: int = 1, retry_visibility: int = 5, wait_seconds: int = 1) -> None:
        super().__init__()
        self.sqs, self.queue_url, self.function, self.region = sqs, queue_url, function, region
        self.batch_size, self.retry_visibility, self.wait_seconds = batch_size, retry_visibility, wait_seconds
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]

    def step(self) -> None:
        if self.function is None:
            self._stop.wait(self.wait_seconds)
            return
        answer = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size,
                                          WaitTimeSeconds=self.wait_seconds, AttributeNames=["All"],
                                          MessageAttributeNames=["All"])
        messages = answer.get("Messages", [])
        if not messages:
            return
        failed: set[str] = set()
        try:
            result = self.function.invoke(sqs_event(messages, self.queue_arn, self.region))
            if isinstance(result, Mapping):
                failed = {str(item.get("itemIdentifier")) for item in result.get("batchItemFailures") or []}
        except InvocationError:
            failed = {m["MessageId"] for m in messages}
        for message in messages:
            if message["MessageId"] in failed:
                # AWS waits for the visibility timeout; locally a short delay keeps retries visible in the demo.
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"],
                                                   VisibilityTimeout=self.retry_visibility)
                log.warning("message %s failed; retried in %ds", message["MessageId"], self.retry_visibility)
            else:
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])


class ScheduleTimer(_Loop):
    """An EventBridge schedule rule targeting one function."""

    name = "timer"

    def __init__(self, function: LocalFunction, interval_seconds: float, region: str) -> None:
        super().__init__()
        self.function, self.interval, self.region = function, interval_seconds, region

    def step(self) -> None:
        if self._stop.wait(self.interval):
            return
        try:
            self.function.invoke(scheduled_event("ReconcileJobsSchedule", self.region))
        except InvocationError:
            pass  # logged by the host; the next tick tries again
