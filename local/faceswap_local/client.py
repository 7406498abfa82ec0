"""What a user does with the pipeline, as code: register faces, drop targets, follow and fetch jobs.

Used by the ``faceswap`` CLI and the demo. It talks to the bucket and the jobs table like any user would
(boto3; against the local stack's moto endpoint or a deployed stack found by its CloudFormation outputs) and
asks the provider for progress with the same key the functions use (read from Secrets Manager).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
from boto3.dynamodb.conditions import Attr, Key
from pydantic import BaseModel

from faceswap_local.config import StackInfo

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
STATUSES = ("PENDING", "SUBMITTED", "STORING", "COMPLETED", "FAILED", "CANCELLED")
STATUS_INDEX = "status-created_at"
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")
_FRAMES = re.compile(r"(\d+)\s*/\s*(\d+)")


class Target(BaseModel):
    """Where the pipeline lives: endpoint (None = real AWS), bucket, table and provider settings."""

    endpoint_url: str | None = None
    region: str | None = None
    bucket: str
    jobs_table: str
    provider_base_url: str | None = None
    provider_app_id: str = "half-moon-ai/ai-face-swap"
    fal_key_secret_arn: str | None = None

    @classmethod
    def local(cls, state_dir: Path | None = None) -> Target:
        info = StackInfo.load(state_dir)
        return cls(endpoint_url=info.endpoint_url, region=info.region, bucket=info.bucket,
                   jobs_table=info.jobs_table, provider_base_url=info.engine_url,
                   provider_app_id=info.provider_app_id, fal_key_secret_arn=info.fal_key_secret_arn)

    @classmethod
    def deployed(cls, stack_name: str, region: str | None = None) -> Target:
        """From a deployed stack's Outputs (bucket, table) and Parameters (provider, key secret)."""
        cfn = boto3.client("cloudformation", region_name=region)
        stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        return cls(region=region or cfn.meta.region_name, bucket=outputs["MediaBucketName"],
                   jobs_table=outputs["JobsTableName"], provider_base_url=params.get("ProviderBaseUrl") or None,
                   provider_app_id=params.get("ProviderAppId") or "half-moon-ai/ai-face-swap",
                   fal_key_secret_arn=params.get("FalKeySecretArn") or None)


def plain(value: Any) -> Any:
    """DynamoDB's Decimals and sets → JSON-friendly values."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    return value


def safe_name(text: str) -> str:
    """A face name usable as a key segment: letters, digits, '-', '_'."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")
    return name or "face"


@dataclass
class Progress:
    """What the follow loop reports on each tick."""

    status: str
    percent: float | None
    message: str | None
    record: dict[str, Any]


class Pipeline:
    """The pipeline seen from outside: S3 keys in, job records and result objects out."""

    def __init__(self, target: Target) -> None:
        self.target = target
        # The local stack (moto) accepts any credentials; never pick up a real profile for it.
        creds = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                 "aws_session_token": "testing"} if target.endpoint_url else {}
        session = boto3.session.Session(region_name=target.region, **creds)
        kw = {"endpoint_url": target.endpoint_url} if target.endpoint_url else {}
        self.s3 = session.client("s3", **kw)
        self.table = session.resource("dynamodb", **kw).Table(target.jobs_table)
        self._secrets = session.client("secretsmanager", **kw)
        self._provider: Any = None
        self._progress_failures = 0

    # ---------------------------------------------------------------- uploads
    def add_face(self, name: str, image: Path) -> str:
        """Register ``image`` as faces/<name>.<ext>; returns the key."""
        key = f"faces/{safe_name(name)}{image.suffix.lower()}"
        self.put_file(image, key)
        return key

    def put_file(self, path: Path, key: str) -> str:
        from faceswap_common.media_types import content_type_for

        extra = {"ContentType": content_type_for(path.name) or "application/octet-stream"}
        self.s3.upload_file(str(path), self.target.bucket, key, ExtraArgs=extra)
        return key

    def drop(self, face_name: str, target: Path, unique: bool = False) -> str:
        """Drop ``target`` into inbox/<face>/ (the drop-folder trigger); returns the key."""
        stem = f"{uuid.uuid4().hex[:8]}-{target.name}" if unique else target.name
        return self.put_file(target, f"inbox/{safe_name(face_name)}/{stem}")

    def submit_manifest(self, target_key: str, faces: Sequence[tuple[str, str | None]], occlusion: bool = False,
                        name: str | None = None) -> str:
        """Write jobs/<name>.json naming keys already in the bucket; returns the manifest key."""
        manifest = {
            "target": target_key,
            "faces": [{"image": key, **({"gender": gender} if gender else {})} for key, gender in faces],
            "enable_occlusion_prevention": occlusion,
        }
        key = f"jobs/{name or uuid.uuid4().hex}.json"
        self.s3.put_object(Bucket=self.target.bucket, Key=key, Body=json.dumps(manifest, indent=2).encode(),
                           ContentType="application/json")
        return key

    # ---------------------------------------------------------------- jobs
    def get_job(self, job_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key={"job_id": job_id}, ConsistentRead=True).get("Item")
        return plain(item) if item else None

    def list_jobs(self, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first; by status through the status index, else all statuses merged."""
        found: list[dict[str, Any]] = []
        for state in [status] if status else STATUSES:
            found += self._query_status(state, since=None, limit=limit)
        found.sort(key=lambda item: str(item.get("created_at", "")), reverse=True)
        return found[:limit]

    def _query_status(self, status: str, since: str | None, limit: int) -> list[dict[str, Any]]:
        cond = Key("status").eq(status)
        if since:
            cond = cond & Key("created_at").gte(since)
        answer = self.table.query(IndexName=STATUS_INDEX, KeyConditionExpression=cond, ScanIndexForward=False,
                                  Limit=limit)
        return [plain(item) for item in answer.get("Items", [])]

    def find_job(self, trigger_key: str, since: datetime, timeout: float = 60.0) -> dict[str, Any]:
        """The job created for the object ``trigger_key`` (uploaded at ``since``); waits for the trigger."""
        since_text = (since - timedelta(seconds=120)).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
        deadline = time.monotonic() + timeout
        while True:
            for status in STATUSES:
                for item in self._query_status(status, since_text, 100):
                    if (item.get("trigger") or {}).get("key") == trigger_key:
                        return item
            if time.monotonic() > deadline:
                break
            time.sleep(0.3)
        # Fall back to a scan (e.g. a record without created_at in the index yet).
        answer = self.table.scan(FilterExpression=Attr("trigger.key").eq(trigger_key))
        items = [plain(i) for i in answer.get("Items", [])]
        if items:
            return max(items, key=lambda i: str(i.get("created_at", "")))
        raise TimeoutError(f"no job was created for s3://{self.target.bucket}/{trigger_key} within {timeout:.0f}s")

    def follow(self, job_id: str, on_progress: Callable[[Progress], None] | None = None,
               interval: float = 0.5, timeout: float = 3600.0) -> dict[str, Any]:
        """Poll the job record (and the provider's status and logs while it runs) until a terminal state."""
        deadline = time.monotonic() + timeout
        while True:
            record = self.get_job(job_id) or {"job_id": job_id, "status": "UNKNOWN"}
            status = str(record.get("status"))
            percent, message = None, None
            if status == "SUBMITTED" and record.get("request_id"):
                percent, message = self.provider_progress(str(record["request_id"]))
            if on_progress:
                on_progress(Progress(status, percent, message, record))
            if status in TERMINAL:
                return record
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {status} after {timeout:.0f}s")
            time.sleep(interval)

    def provider_progress(self, request_id: str) -> tuple[float | None, str | None]:
        """(percent done if the logs say, last log line) from the provider's status; (None, None) if unknown."""
        if self._progress_failures >= 3:
            return None, None
        try:
            client = self.provider()
            if client is None:
                return None, None
            status = client.status(None, request_id, logs=True)
        except Exception:  # progress is best effort (no secret access, provider down); the record is the truth
            self._progress_failures += 1  # after a few, stop asking (e.g. no access to the key's secret)
            return None, None
        if status.status == "IN_QUEUE":
            return 0.0, f"in queue (position {status.queue_position})"
        for entry in reversed(status.logs or []):
            if m := _PERCENT.search(entry.message):
                return float(m.group(1)), entry.message
            if (m := _FRAMES.search(entry.message)) and int(m.group(2)):
                return 100.0 * int(m.group(1)) / int(m.group(2)), entry.message
        last = status.logs[-1].message if status.logs else str(status.status)
        return (100.0 if status.is_completed else None), last

    def provider(self) -> Any:
        """The layer's queue client with the key from Secrets Manager (None if not configured)."""
        if self._provider is None and self.target.provider_base_url and self.target.fal_key_secret_arn:
            from faceswap_common.provider import FalQueueClient

            secret = self._secrets.get_secret_value(SecretId=self.target.fal_key_secret_arn)["SecretString"]
            key = secret
            if secret.strip().startswith("{"):
                key = json.loads(secret).get("FAL_KEY", "")
            self._provider = FalQueueClient(self.target.provider_base_url, self.target.provider_app_id, key)
        return self._provider

    def cancel(self, job_id: str) -> tuple[bool, bool | None]:
        """Mark the job CANCELLED (conditional; terminal jobs are left alone) and cancel it at the provider.

        Returns (record cancelled, provider cancel requested or None if there was nothing to cancel there).
        """
        from faceswap_common.job_store import JobStore

        record = self.get_job(job_id)
        if record is None:
            raise KeyError(job_id)
        store = JobStore(self.target.jobs_table, self.table.meta.client)
        try:
            marked = bool(store.mark_cancelled(job_id))
        except Exception as exc:  # TransitionRejected: already terminal
            if type(exc).__name__ != "TransitionRejected":
                raise
            marked = False
        at_provider = None
        if marked and record.get("request_id") and self.provider() is not None:
            at_provider = bool(self.provider().cancel(None, str(record["request_id"])))
        return marked, at_provider

    # ---------------------------------------------------------------- results
    def download_output(self, record: dict[str, Any], out_dir: Path) -> Path:
        output = record.get("output") or {}
        key = str(output["key"])
        dest = out_dir / str(record["job_id"]) / key.rsplit("/", 1)[-1]
        dest.parent.mkdir(parents=True, exist_ok=True)
        self.s3.download_file(output.get("bucket") or self.target.bucket, key, str(dest))
        return dest

    def iter_outputs(self, job_id: str) -> Iterator[str]:
        answer = self.s3.list_objects_v2(Bucket=self.target.bucket, Prefix=f"outputs/{job_id}/")
        for obj in answer.get("Contents", []):
            yield str(obj["Key"])


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
