"""Harness of the pipeline integration tests: a moto server, a fal-protocol server, the three real handlers.

Handlers are loaded once per session from functions/*/app.py with the environment a deployed stack gives
them (the env is restored right after import, so other suites never see the endpoint override). Each test
starts from a wiped moto server with the bucket, tables and queues created from template.yaml.
Events come from events/*.json: bucket, key, eTag and size are filled in, webhook events re-signed.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlsplit

import boto3
import httpx
from faceswap_common.job_store import JobRecord, JobStore
from faceswap_local.template_resources import ResourceNames, StackNames, create_stack_resources
from moto.server import ThreadedMotoServer

from fal_protocol_server import KEY, Delivery, FalProtocolServer, free_port
from lambda_harness import FakeContext, load_event, load_handler

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
NAMES = StackNames.with_prefix("it")
SECRET_NAME = "faceswap/fal-key"
TOKEN_SECRET_NAME = "faceswap/webhook-token"
TOKEN_KEY = "integration-webhook-token-key-0123456789"
WEBHOOK_BASE = "https://webhook.example.lambda-url.us-east-1.on.aws/"
MAX_IMAGE_BYTES = 128 * 1024
MAX_VIDEO_BYTES = 256 * 1024
CAPTURE_QUEUE = "it-captured-events"



def _load_handler(name: str) -> ModuleType:
    return load_handler(name, "it_handler_")


@dataclass
class Stack:
    endpoint: str
    provider: FalProtocolServer
    submit: ModuleType
    webhook: ModuleType
    store: ModuleType
    secret_arn: str


class Pipeline:
    """One test's view of the stack: AWS clients, helpers to invoke the handlers with events/ files."""

    def __init__(self, stack: Stack, names: ResourceNames) -> None:
        self.stack = stack
        self.provider = stack.provider
        self.names = names
        kw = {"endpoint_url": stack.endpoint, "region_name": "us-east-1"}
        self.s3 = boto3.client("s3", **kw)
        self.sqs = boto3.client("sqs", **kw)
        self.ddb = boto3.client("dynamodb", **kw)
        self.jobs = JobStore(names.jobs_table, boto3.resource("dynamodb", **kw))
        self.capture_url = self.sqs.get_queue_url(QueueName=CAPTURE_QUEUE)["QueueUrl"]

    # -- S3 ----------------------------------------------------------------------------------------
    def put(self, key: str, body: bytes) -> str:
        return self.s3.put_object(Bucket=self.names.bucket, Key=key, Body=body)["ETag"].strip('"')

    def get(self, key: str) -> bytes:
        return self.s3.get_object(Bucket=self.names.bucket, Key=key)["Body"].read()

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.names.bucket, Prefix=prefix)
        return sorted(o["Key"] for p in pages for o in p.get("Contents", []))

    def inputs_snapshot(self) -> dict[str, tuple[str, str]]:
        """Every object outside outputs/: (ETag, sha256 of the bytes): inputs must stay untouched."""
        snap = {}
        for key in self.keys():
            if not key.startswith("outputs/"):
                obj = self.s3.get_object(Bucket=self.names.bucket, Key=key)
                snap[key] = (obj["ETag"], hashlib.sha256(obj["Body"].read()).hexdigest())
        return snap

    # -- SubmitJob -----------------------------------------------------------------------------------
    def s3_event(self, event_file: str, key: str | None = None) -> dict[str, Any]:
        """events/<file> for an object that exists: bucket, encoded key, eTag and size filled in."""
        event = load_event(event_file)
        obj = event["Records"][0]["s3"]["object"]
        if key is None:
            from urllib.parse import unquote_plus

            key = unquote_plus(obj["key"])
        head = self.s3.head_object(Bucket=self.names.bucket, Key=key)
        record = event["Records"][0]["s3"]
        record["bucket"]["name"] = self.names.bucket
        record["bucket"]["arn"] = f"arn:aws:s3:::{self.names.bucket}"
        obj.update(key=quote_plus(key, safe="/"), eTag=head["ETag"].strip('"'), size=head["ContentLength"])
        return event

    def submit(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        return self.stack.submit.lambda_handler(copy.deepcopy(event), FakeContext())["outcomes"]

    # -- Webhook -----------------------------------------------------------------------------------
    def webhook_event(self, delivery: Delivery, template: str = "webhook_ok.json",
                      headers: dict[str, str] | None = None, query: dict[str, str] | None = None) -> dict[str, Any]:
        event = load_event(template)
        params = dict(parse_qsl(urlsplit(delivery.url).query)) if query is None else query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in params.items())
        event["queryStringParameters"] = params or None
        for name in [h for h in event["headers"] if h.startswith("x-fal-webhook-")]:
            del event["headers"][name]
        event["headers"].update(delivery.headers if headers is None else headers)
        event["headers"]["content-length"] = str(len(delivery.body))
        event["body"] = delivery.body.decode()
        return event

    def deliver(self, delivery: Delivery, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        answer = self.stack.webhook.lambda_handler(self.webhook_event(delivery, **kwargs), FakeContext())
        return answer["statusCode"], json.loads(answer["body"])

    # -- StoreResult -------------------------------------------------------------------------------
    def copy_messages(self) -> list[dict[str, Any]]:
        answer = self.sqs.receive_message(QueueUrl=self.names.result_copy_queue_url, MaxNumberOfMessages=10,
                                          AttributeNames=["All"])
        return answer.get("Messages", [])

    def run_store(self) -> list[dict[str, Any]]:
        """Receive the queued copy requests, invoke StoreResult with events/sqs_store_result.json each.

        Successful records are deleted (what Lambda does); failed ones are made visible again at once.
        Returns the batchItemFailures of every invocation.
        """
        failures = []
        for message in self.copy_messages():
            event = load_event("sqs_store_result.json")
            record = event["Records"][0]
            record.update(messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"], body=message["Body"])
            record["attributes"]["ApproximateReceiveCount"] = message["Attributes"]["ApproximateReceiveCount"]
            answer = self.stack.store.lambda_handler(event, FakeContext())
            failed = answer.get("batchItemFailures", [])
            failures.extend(failed)
            if failed:
                self.sqs.change_message_visibility(QueueUrl=self.names.result_copy_queue_url,
                                                   ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            else:
                self.sqs.delete_message(QueueUrl=self.names.result_copy_queue_url,
                                        ReceiptHandle=message["ReceiptHandle"])
        return failures

    # -- records -----------------------------------------------------------------------------------
    def job(self, job_id: str) -> JobRecord:
        record = self.jobs.get(job_id)
        assert record is not None, f"no job {job_id}"
        return record

    def all_jobs(self) -> list[dict[str, Any]]:
        return self.ddb.scan(TableName=self.names.jobs_table).get("Items", [])

    def captured_events(self) -> list[dict[str, Any]]:
        out = []
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=m["ReceiptHandle"])

    # -- whole flow --------------------------------------------------------------------------------
    def run_job(self, event: dict[str, Any], **complete: Any) -> str:
        """Submit → provider completes → webhook → copy; return the job id."""
        outcomes = self.submit(event)
        assert outcomes[0]["outcome"] == "submitted", outcomes
        sub = self.provider.submissions[outcomes[0]["request_id"]]
        status, body = self.deliver(self.provider.complete(sub, **complete))
        assert status == 200, body
        assert self.run_store() == []
        return outcomes[0]["job_id"]




# Test media: bytes only (the protocol server does not decode them; the engine-server tests use real media).
FACE = b"\xff\xd8\xff\xe0 alice face jpeg" + bytes(range(256))
FACE_BOB = b"\x89PNG\r\n bob face png" + bytes(range(200))
VIDEO = b"\x00\x00\x00\x18ftypmp42 party video" + bytes(range(256)) * 8
IMAGE = b"\xff\xd8\xff\xe0 portrait jpeg" + bytes(range(256)) * 2


def start_stack() -> tuple[Stack, Callable[[], None]]:
    """Start moto and the protocol server, load the handlers with a deployed stack's env; returns (stack, stop)."""
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    provider = FalProtocolServer().start()
    secret_arn = SECRET_NAME  # moto appends a random suffix to ARNs; the name is a valid SecretId too
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "MEDIA_BUCKET": NAMES.bucket,
        "JOBS_TABLE": NAMES.jobs_table,
        "IDEMPOTENCY_TABLE": NAMES.idempotency_table,
        "PROVIDER_BASE_URL": provider.base_url,
        "PROVIDER_APP_ID": "half-moon-ai/ai-face-swap",
        "FAL_KEY_SECRET_ARN": secret_arn,
        "JWKS_URL": f"{provider.base_url}/.well-known/jwks.json",
        "WEBHOOK_URL": WEBHOOK_BASE,
        "ALLOWED_RESULT_HOSTS": f"*.fal.media,fal.media,storage.googleapis.com,{provider.host}",
        "PRESIGN_EXPIRY_SECONDS": "3600",
        "MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
        "MAX_VIDEO_BYTES": str(MAX_VIDEO_BYTES),
        "RESULT_COPY_QUEUE_URL": f"{endpoint}/123456789012/{NAMES.result_copy_queue}",
        "EVENT_BUS_NAME": "default",
        "WEBHOOK_TOKEN_SECRET_ARN": TOKEN_SECRET_NAME,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        handlers = {name: _load_handler(name) for name in ("submit_job", "webhook", "store_result")}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    stack = Stack(endpoint, provider, handlers["submit_job"], handlers["webhook"], handlers["store_result"], secret_arn)

    def stop() -> None:
        provider.stop()
        moto.stop()

    return stack, stop


def fresh_pipeline(stack: Stack) -> Pipeline:
    """Wipe the moto server, recreate the template's resources, the key secret and an event capture rule."""
    httpx.post(f"{stack.endpoint}/moto-api/reset").raise_for_status()
    stack.provider.reset()
    session = boto3.Session(region_name="us-east-1")
    names = create_stack_resources(session, NAMES, endpoint_url=stack.endpoint)
    kw = {"endpoint_url": stack.endpoint, "region_name": "us-east-1"}
    boto3.client("secretsmanager", **kw).create_secret(Name=SECRET_NAME, SecretString=KEY)
    boto3.client("secretsmanager", **kw).create_secret(Name=TOKEN_SECRET_NAME, SecretString=TOKEN_KEY)
    sqs = boto3.client("sqs", **kw)
    capture = sqs.create_queue(QueueName=CAPTURE_QUEUE)["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", **kw)
    events.put_rule(Name="capture", EventPattern=json.dumps({"source": ["faceswap-pipeline"]}))
    events.put_targets(Rule="capture", Targets=[{"Id": "q", "Arn": capture_arn}])
    return Pipeline(stack, names)


def job_token(job_id: str) -> str:
    """The URL token the pipeline gives `job_id` (what a legitimate webhook URL carries)."""
    from faceswap_common.submission import webhook_token

    return webhook_token(TOKEN_KEY.encode(), job_id)
