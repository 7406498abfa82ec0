"""The local stack's Lambda event sources behave like AWS's: async retries then the on-failure queue for S3
events, and for the SQS worker deletion of successes only, honouring batchItemFailures (moto in-process)."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from faceswap_local.lambda_host import LocalFunction
from faceswap_local.pollers import S3EventRelay, SqsWorker

MOTO_BODY = json.dumps({"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": "2026-11-23T22:00:00.000Z",
    "eventName": "ObjectCreated:Put",
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "c", "bucket": {"name": "b-x", "arn": "arn:aws:s3:::b-x"},
           "object": {"key": "inbox%2Fa%2Fx.mp4", "size": 3, "eTag": "e"}}}]})


def _function(name: str, handler: Any) -> LocalFunction:
    module = types.ModuleType(name)
    module.lambda_handler = handler  # type: ignore[attr-defined]
    return LocalFunction(logical_id=name, name=name, module=module, handler_name="lambda_handler",
                         timeout_seconds=30, memory_mb=128)


@pytest.fixture
def sqs() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def test_relay_retries_then_sends_to_the_failure_queue(sqs: Any) -> None:
    events = sqs.create_queue(QueueName="events")["QueueUrl"]
    failures = sqs.create_queue(QueueName="failures")["QueueUrl"]
    sqs.send_message(QueueUrl=events, MessageBody=json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"}))
    sqs.send_message(QueueUrl=events, MessageBody=MOTO_BODY)
    calls: list[dict[str, Any]] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        calls.append(event)
        raise RuntimeError("boom")

    relay = S3EventRelay(sqs, events, _function("submit_job", handler), failures, retry_delay=0, wait_seconds=0)
    relay.step()

    assert len(calls) == 3  # the first try and Lambda's two async retries; the test event never reaches it
    assert calls[0]["Records"][0]["s3"]["object"]["key"] == "inbox/a/x.mp4"
    (message,) = sqs.receive_message(QueueUrl=failures, MaxNumberOfMessages=10)["Messages"]
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["Records"][0]["s3"]["bucket"]["name"] == "b-x"
    assert "Messages" not in sqs.receive_message(QueueUrl=events, MaxNumberOfMessages=10)


def test_worker_deletes_only_what_succeeded(sqs: Any) -> None:
    queue = sqs.create_queue(QueueName="copy", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
    for n in range(3):
        sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"job_id": f"j{n}"}))
    seen: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failures = []
        for record in event["Records"]:
            assert record["eventSource"] == "aws:sqs" and record["attributes"]["ApproximateReceiveCount"]
            seen.append(json.loads(record["body"])["job_id"])
            if json.loads(record["body"])["job_id"] == "j1":
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    worker = SqsWorker(sqs, queue, _function("store_result", handler), "us-east-1", batch_size=10,
                       retry_visibility=0, wait_seconds=0)
    worker.step()

    assert sorted(seen) == ["j0", "j1", "j2"]
    left = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"])["job_id"] for m in left] == ["j1"]  # failed item is back for a retry


def test_worker_keeps_the_batch_when_the_function_fails(sqs: Any) -> None:
    queue = sqs.create_queue(QueueName="copy2")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="{}")

    def handler(event: dict[str, Any], context: Any) -> None:
        raise RuntimeError("crash")

    worker = SqsWorker(sqs, queue, _function("store_result", handler), "us-east-1", retry_visibility=0,
                       wait_seconds=0)
    worker.step()

    assert len(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]) == 1
