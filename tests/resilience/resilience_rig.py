"""The pipeline on loopback for the resilience suites (helpers and fixtures; conftest.py re-exports the fixtures): a moto server, a fault-injecting provider, and the
four real handler modules (submit_job, webhook, store_result, reconcile_jobs) loaded as Lambda would.

`Rig.settle()` plays the world forward (reconciler runs at later clock readings, the SQS worker with its
redrive limit) until every job is terminal, then `Rig.check()` counts lost jobs, duplicate submissions
and partial outputs into the tally that the terminal summary prints.
"""

from __future__ import annotations

import copy
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote_plus

import boto3
import httpx
import pytest
from lambda_harness import FakeContext, load_event, load_handler
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).parent))
import tally  # noqa: E402
from fault_provider import KEY, Delivery, FaultProvider, free_port  # noqa: E402

import faceswap_common.submission as submission_module  # noqa: E402
from faceswap_common.job_store import JobRecord, JobStatus, JobStore  # noqa: E402
from faceswap_common.provider import FalQueueClient, RetryPolicy  # noqa: E402
from faceswap_common.reconcile import reconcile  # noqa: E402
from faceswap_local.template_resources import ResourceNames, StackNames, create_stack_resources  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
NAMES = StackNames.with_prefix("res")
SECRET_NAME = "faceswap/fal-key-resilience"
TOKEN_SECRET_NAME = "faceswap/webhook-token-resilience"
TOKEN_SECRET = "tok-8c1e0d5a7b3f4e2a9d6c"  # per-job webhook URL tokens are HMACs under this key; never logged
WEBHOOK_BASE = "https://resilience.lambda-url.us-east-1.on.aws/"
CAPTURE_QUEUE = "res-captured-events"
MAX_RECEIVES = 5  # ResultCopyQueue maxReceiveCount in template.yaml
CLIENT_TIMEOUT = httpx.Timeout(0.6, connect=0.5)
FACE = b"\x89PNG\r\n\x1a\n" + b"face" * 64
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 2048
RECONCILE_ENV = {
    "RECONCILE_AFTER_SECONDS": "60",
    "PENDING_RETRY_AFTER_SECONDS": "60",
    "SUBMIT_OUTCOME_DEADLINE_SECONDS": "600",
    "STORING_DEADLINE_SECONDS": "300",
    "MAX_COPY_REQUEUES": "2",
    "MAX_JOB_AGE_SECONDS": "3600",
}
# Reconciler clock readings (seconds after "now") that walk every deadline above in order.
SETTLE_OFFSETS = (0, 120, 400, 700, 1000, 1300, 1600, 4000, 8000)



def _load_handler(name: str) -> ModuleType:
    return load_handler(name, "res_handler_")


@dataclass
class Stack:
    endpoint: str
    provider: FaultProvider
    env: dict[str, str]
    submit: ModuleType
    webhook: ModuleType
    store: ModuleType
    reconcile: ModuleType
    clients: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    provider = FaultProvider().start()
    env = {
        "AWS_ENDPOINT_URL": endpoint,
        "MEDIA_BUCKET": NAMES.bucket,
        "JOBS_TABLE": NAMES.jobs_table,
        "IDEMPOTENCY_TABLE": NAMES.idempotency_table,
        "PROVIDER_BASE_URL": provider.base_url,
        "PROVIDER_APP_ID": "half-moon-ai/ai-face-swap",
        "FAL_KEY_SECRET_ARN": SECRET_NAME,
        "JWKS_URL": f"{provider.base_url}/.well-known/jwks.json",
        "WEBHOOK_URL": WEBHOOK_BASE,
        "ALLOWED_RESULT_HOSTS": f"*.fal.media,fal.media,storage.googleapis.com,{provider.host}",
        "MAX_IMAGE_BYTES": str(128 * 1024),
        "MAX_VIDEO_BYTES": str(32 * 1024 * 1024),
        "MAX_MANIFEST_BYTES": str(4096),
        "RESULT_COPY_QUEUE_URL": f"{endpoint}/123456789012/{NAMES.result_copy_queue}",
        "EVENT_BUS_NAME": "default",
        **RECONCILE_ENV,
        "WEBHOOK_TOKEN_SECRET_ARN": TOKEN_SECRET_NAME,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        handlers = {n: _load_handler(n) for n in ("submit_job", "webhook", "store_result", "reconcile_jobs")}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    kw = {"endpoint_url": endpoint, "region_name": "us-east-1"}
    clients = {n: boto3.client(n, **kw) for n in ("s3", "dynamodb", "sqs")}
    yield Stack(endpoint, provider, env, handlers["submit_job"], handlers["webhook"], handlers["store_result"],
                handlers["reconcile_jobs"], clients)
    provider.stop()
    moto.stop()


def fast_client(base_url: str) -> FalQueueClient:
    """The queue client every handler gets in these tests: short timeouts, retries without pauses."""
    return FalQueueClient(base_url, "half-moon-ai/ai-face-swap", KEY, retry=RetryPolicy(max_attempts=3, base_delay=0),
                          timeout=CLIENT_TIMEOUT, sleep=lambda _s: None)


class Rig:
    """One test's view of the stack."""

    def __init__(self, stack: Stack, names: ResourceNames) -> None:
        self.stack = stack
        self.provider = stack.provider
        self.names = names
        kw = {"endpoint_url": stack.endpoint, "region_name": "us-east-1"}
        self.kw = kw
        self.s3 = stack.clients["s3"]
        self.sqs = stack.clients["sqs"]
        if "jobs" not in stack.clients:
            stack.clients["jobs"] = JobStore(names.jobs_table, boto3.resource("dynamodb", **kw))
        self.jobs = stack.clients["jobs"]
        self.capture_url = self.sqs.get_queue_url(QueueName=CAPTURE_QUEUE)["QueueUrl"]
        self.expected_outputs: dict[str, bytes] = {}  # job_id -> the bytes the provider produced
        self.use_provider(stack.provider.base_url)

    def use_provider(self, base_url: str) -> None:
        """Point every handler's queue client at base_url (a closed port = provider down)."""
        for module in (self.stack.submit, self.stack.store, self.stack.reconcile):
            module.deps._provider = fast_client(base_url)
        self.stack.submit.deps.sleep = lambda _s: None
        rec = self.stack.reconcile.deps
        rec._submit_deps = None
        rec.submit_deps.sleep = lambda _s: None
        # (built lazily, after the handlers' import-time environment was restored: same token key as SubmitJob)
        rec.submit_deps.token_key = getattr(self.stack.submit.deps, "token_key", None)

    @property
    def token_key(self) -> Any:
        """The webhook-token key reader SubmitJob uses (None where the code has no per-job tokens)."""
        return getattr(self.stack.submit.deps, "token_key", None)

    def token_for(self, job_id: str) -> str | None:
        reader = self.token_key
        return submission_module.webhook_token(reader(), job_id) if reader is not None else None

    # -- S3 ----------------------------------------------------------------------------------------
    def put(self, key: str, body: bytes) -> str:
        return self.s3.put_object(Bucket=self.names.bucket, Key=key, Body=body)["ETag"].strip('"')

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.names.bucket, Prefix=prefix)
        return sorted(o["Key"] for p in pages for o in p.get("Contents", []))

    def s3_event(self, key: str, template: str = "s3_put_inbox_video.json") -> dict[str, Any]:
        event = load_event(template)
        head = self.s3.head_object(Bucket=self.names.bucket, Key=key)
        record = event["Records"][0]["s3"]
        record["bucket"]["name"] = self.names.bucket
        record["bucket"]["arn"] = f"arn:aws:s3:::{self.names.bucket}"
        record["object"].update(key=quote_plus(key, safe="/"), eTag=head["ETag"].strip('"'),
                                size=head["ContentLength"], sequencer=f"{time.time_ns():X}")
        return event

    def drop_video(self, name: str = "clip.mp4", face: str = "alice", body: bytes = VIDEO) -> dict[str, Any]:
        self.put(f"faces/{face}.png", FACE)
        key = f"inbox/{face}/{name}"
        self.put(key, body)
        return self.s3_event(key)

    # -- handlers ----------------------------------------------------------------------------------
    def submit(self, event: dict[str, Any], context: FakeContext | None = None) -> list[dict[str, Any]]:
        return self.stack.submit.lambda_handler(copy.deepcopy(event), context or FakeContext())["outcomes"]

    def submit_one(self, event: dict[str, Any]) -> dict[str, Any]:
        outcomes = self.submit(event)
        assert len(outcomes) == 1
        return outcomes[0]

    def webhook_event(self, delivery: Delivery, *, headers: dict[str, str] | None = None,
                      query: dict[str, str] | None = None) -> dict[str, Any]:
        event = load_event("webhook_ok.json")
        params = delivery.query if query is None else query
        event["rawQueryString"] = "&".join(f"{k}={v}" for k, v in params.items())
        event["queryStringParameters"] = params or None
        for name in [h for h in event["headers"] if h.startswith("x-fal-webhook-")]:
            del event["headers"][name]
        event["headers"].update(delivery.headers if headers is None else headers)
        event["headers"]["content-length"] = str(len(delivery.body))
        event["body"] = delivery.body.decode()
        event["isBase64Encoded"] = False
        return event

    def deliver(self, delivery: Delivery, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        answer = self.stack.webhook.lambda_handler(self.webhook_event(delivery, **kwargs), FakeContext())
        return answer["statusCode"], json.loads(answer["body"])

    def complete(self, job_id: str, **kwargs: Any) -> Delivery:
        req = self.provider.request_for(job_id)
        delivery = self.provider.complete(req, **kwargs)
        if kwargs.get("outcome", "ok") == "ok":
            self.expected_outputs[job_id] = self.provider.file_bytes(req)
        return delivery

    def run_store(self, rounds: int = 8) -> int:
        """The SQS event source: deliver copy messages to StoreResult; failed ones come back, and after
        MAX_RECEIVES receives go to the dead-letter queue (as the RedrivePolicy does). Returns failures."""
        failures = 0
        url = self.names.result_copy_queue_url
        for _ in range(rounds):
            messages = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                                VisibilityTimeout=30).get("Messages", [])
            if not messages:
                break
            for message in messages:
                event = load_event("sqs_store_result.json")
                record = event["Records"][0]
                receives = int(message["Attributes"]["ApproximateReceiveCount"])
                record.update(messageId=message["MessageId"], receiptHandle=message["ReceiptHandle"],
                              body=message["Body"])
                record["attributes"]["ApproximateReceiveCount"] = str(receives)
                answer = self.stack.store.lambda_handler(event, FakeContext())
                failed = bool(answer.get("batchItemFailures"))
                failures += failed
                if failed and receives < MAX_RECEIVES:
                    self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"],
                                                       VisibilityTimeout=0)
                else:  # done, or moved to the DLQ: gone from the work queue either way
                    self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    if failed:
                        self.sqs.send_message(QueueUrl=self.names.result_copy_dlq_url, MessageBody=message["Body"])
        return failures

    def reconcile(self, offset: float = 0.0) -> Any:
        tally.add("reconciler_runs")
        return reconcile(self.stack.reconcile.deps, now=time.time() + offset)

    # -- outcomes ----------------------------------------------------------------------------------
    def job(self, job_id: str) -> JobRecord:
        record = self.jobs.get(job_id)
        assert record is not None, f"no job {job_id}"
        return record

    def job_or_none(self, job_id: str) -> JobRecord | None:
        return self.jobs.get(job_id)

    def all_jobs(self) -> list[JobRecord]:
        out = []
        for status in JobStatus:
            out.extend(self.jobs.list_by_status(status, limit=1000))
        return out

    def settle(self) -> list[JobRecord]:
        """Run the copy worker and the reconciler at later and later clock readings until all jobs end."""
        self.run_store()
        for offset in SETTLE_OFFSETS:
            if all(j.status.is_terminal for j in self.all_jobs()):
                break
            self.reconcile(offset)
            self.run_store()
        return self.all_jobs()

    def check(self, kind: str, name: str) -> list[JobRecord]:
        """Settle, then count what must never happen; asserts every job ended with a reason."""
        tally.case(kind, name)
        jobs = self.settle()
        lost = [j for j in jobs if not j.status.is_terminal]
        tally.add("lost_jobs", len(lost))
        duplicates = sum(n - 1 for n in self.provider.accepted_posts_by_job().values() if n > 1)
        tally.add("duplicate_submissions", duplicates)
        partial = self.partial_outputs(jobs)
        tally.add("partial_outputs", len(partial))
        assert not lost, [(j.job_id, j.status) for j in lost]
        assert duplicates == 0, self.provider.posts
        assert not partial, partial
        for job in jobs:
            if job.status != JobStatus.COMPLETED:
                assert job.error is not None and job.error.code, f"{job.job_id} ended {job.status} without a reason"
        return jobs

    def partial_outputs(self, jobs: list[JobRecord]) -> list[str]:
        """outputs/ objects that are not exactly a COMPLETED job's whole result."""
        by_id = {j.job_id: j for j in jobs}
        bad = []
        for key in self.keys("outputs/"):
            job = by_id.get(key.split("/")[1])
            data = self.s3.get_object(Bucket=self.names.bucket, Key=key)["Body"].read()
            if job is None or job.status != JobStatus.COMPLETED or job.output is None or job.output.key != key:
                bad.append(key)
            elif job.job_id in self.expected_outputs and data != self.expected_outputs[job.job_id]:
                bad.append(key)
        for job in jobs:
            if job.status == JobStatus.COMPLETED and (job.output is None or job.output.key not in self.keys("outputs/")):
                bad.append(f"missing output of {job.job_id}")
        return bad

    def captured_events(self) -> list[dict[str, Any]]:
        out = []
        while True:
            msgs = self.sqs.receive_message(QueueUrl=self.capture_url, MaxNumberOfMessages=10).get("Messages", [])
            if not msgs:
                return out
            for m in msgs:
                out.append(json.loads(m["Body"]))
                self.sqs.delete_message(QueueUrl=self.capture_url, ReceiptHandle=m["ReceiptHandle"])


def _wipe(stack: Stack, names: ResourceNames) -> None:
    """Empty the bucket, tables and queues (much faster than a moto reset plus re-creation)."""
    s3, ddb, sqs = (stack.clients[n] for n in ("s3", "dynamodb", "sqs"))
    for upload in s3.list_multipart_uploads(Bucket=names.bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=names.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    keys = [{"Key": o["Key"]} for o in s3.list_objects_v2(Bucket=names.bucket).get("Contents", [])]
    if keys:
        s3.delete_objects(Bucket=names.bucket, Delete={"Objects": keys})
    for table, key in ((names.jobs_table, "job_id"), (names.idempotency_table, "id")):
        for item in ddb.scan(TableName=table, ProjectionExpression="#k", ExpressionAttributeNames={"#k": key})["Items"]:
            ddb.delete_item(TableName=table, Key={key: item[key]})
    for url in (names.result_copy_queue_url, names.result_copy_dlq_url, names.submit_failure_queue_url,
                sqs.get_queue_url(QueueName=CAPTURE_QUEUE)["QueueUrl"]):
        while True:  # drain (PurgeQueue is limited to once a minute)
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                break
            sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])


@pytest.fixture(scope="session")
def resources(stack: Stack) -> ResourceNames:
    """Bucket, tables and queues from template.yaml, the secret and an event-capture rule: created once."""
    kw = {"endpoint_url": stack.endpoint, "region_name": "us-east-1"}
    names = create_stack_resources(stack.clients, NAMES, endpoint_url=stack.endpoint)
    boto3.client("secretsmanager", **kw).create_secret(Name=SECRET_NAME, SecretString=KEY)
    boto3.client("secretsmanager", **kw).create_secret(Name=TOKEN_SECRET_NAME, SecretString=TOKEN_SECRET)
    sqs = stack.clients["sqs"]
    capture = sqs.create_queue(QueueName=CAPTURE_QUEUE)["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = boto3.client("events", **kw)
    events.put_rule(Name="capture", EventPattern=json.dumps({"source": ["faceswap-pipeline"]}))
    events.put_targets(Rule="capture", Targets=[{"Id": "q", "Arn": capture_arn}])
    return names


@pytest.fixture
def rig(stack: Stack, resources: ResourceNames) -> Iterator[Rig]:
    _wipe(stack, resources)
    stack.provider.reset()
    yield Rig(stack, resources)
    stack.provider.on_submit = None
