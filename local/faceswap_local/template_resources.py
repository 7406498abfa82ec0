"""Create the stack's data resources (bucket, tables, queues) in any boto3 endpoint, straight from template.yaml.

Why: tests and the local stack must use the very key schemas, indexes, TTLs, queue settings and S3 event filters
that CloudFormation deploys, so they cannot drift from the template. Works against moto in-process (`mock_aws`)
or a moto server (pass a session and an endpoint URL).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"

BUCKET_ID = "MediaBucket"
JOBS_TABLE_ID = "JobsTable"
IDEMPOTENCY_TABLE_ID = "IdempotencyTable"
QUEUE_IDS = ("SubmitFailureQueue", "ResultCopyDLQ", "ResultCopyQueue")
SUBMIT_FUNCTION_ID = "SubmitJobFunction"


@dataclass(frozen=True)
class StackNames:
    """Physical names to give the template's resources (CloudFormation would generate them)."""

    bucket: str = "faceswap-media-local"
    jobs_table: str = "faceswap-jobs"
    idempotency_table: str = "faceswap-idempotency"
    submit_failure_queue: str = "faceswap-submit-failure"
    result_copy_dlq: str = "faceswap-result-copy-dlq"
    result_copy_queue: str = "faceswap-result-copy"

    @classmethod
    def with_prefix(cls, prefix: str) -> StackNames:
        """Names that share a prefix, for tests that want several independent stacks."""
        p = prefix.rstrip("-").lower()
        return cls(
            bucket=f"{p}-media",
            jobs_table=f"{p}-jobs",
            idempotency_table=f"{p}-idempotency",
            submit_failure_queue=f"{p}-submit-failure",
            result_copy_dlq=f"{p}-result-copy-dlq",
            result_copy_queue=f"{p}-result-copy",
        )


@dataclass(frozen=True)
class ResourceNames:
    """What was created: names and URLs, plus the env vars the functions read (contracts.md)."""

    bucket: str
    jobs_table: str
    idempotency_table: str
    submit_failure_queue_url: str
    result_copy_dlq_url: str
    result_copy_queue_url: str
    s3_event_queue_url: str | None = None
    queue_arns: Mapping[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """Environment variables naming these resources (MEDIA_BUCKET, JOBS_TABLE, ...)."""
        return {
            "MEDIA_BUCKET": self.bucket,
            "JOBS_TABLE": self.jobs_table,
            "IDEMPOTENCY_TABLE": self.idempotency_table,
            "RESULT_COPY_QUEUE_URL": self.result_copy_queue_url,
        }


def load_template(path: Path | str | None = None) -> dict[str, Any]:
    """template.yaml as plain dicts; short-form tags (!Ref, !Sub, !GetAtt ...) become their long form."""
    from samtranslator.yaml_helper import yaml_parse

    text = Path(path or TEMPLATE_PATH).read_text(encoding="utf-8")
    return yaml_parse(text)


def resource_properties(template: Mapping[str, Any], logical_id: str) -> dict[str, Any]:
    """Properties of one resource of the template (KeyError if the template lacks it)."""
    return dict(template["Resources"][logical_id].get("Properties", {}))


def table_definition(template: Mapping[str, Any], logical_id: str, table_name: str) -> dict[str, Any]:
    """create_table arguments taken from the template's AWS::DynamoDB::Table Properties."""
    props = resource_properties(template, logical_id)
    kwargs: dict[str, Any] = {
        "TableName": table_name,
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return kwargs


def submit_s3_filters(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The SubmitJob function's S3 event sources: [{"Events": [...], "Filter": {"Key": {"FilterRules": [...]}}}]."""
    events = template["Resources"][SUBMIT_FUNCTION_ID]["Properties"].get("Events", {})
    out: list[dict[str, Any]] = []
    for event in events.values():
        if event.get("Type") != "S3":
            continue
        props = event["Properties"]
        names = props["Events"] if isinstance(props["Events"], list) else [props["Events"]]
        rules = props.get("Filter", {}).get("S3Key", {}).get("Rules", [])
        entry: dict[str, Any] = {"Events": list(names)}
        if rules:
            entry["Filter"] = {"Key": {"FilterRules": [{"Name": r["Name"], "Value": r["Value"]} for r in rules]}}
        out.append(entry)
    return out


def _clients(session_or_clients: Any, endpoint_url: str | None) -> dict[str, Any]:
    if isinstance(session_or_clients, Mapping):
        return {k: session_or_clients[k] for k in ("s3", "dynamodb", "sqs")}
    kwargs = {"endpoint_url": endpoint_url} if endpoint_url else {}
    return {svc: session_or_clients.client(svc, **kwargs) for svc in ("s3", "dynamodb", "sqs")}


def _create_bucket(s3: Any, template: Mapping[str, Any], name: str) -> None:
    props = resource_properties(template, BUCKET_ID)
    region = s3.meta.region_name
    if region and region != "us-east-1":
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    else:
        s3.create_bucket(Bucket=name)
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(
            Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
        )
    if "BucketEncryption" in props:
        rules = [  # CloudFormation says ServerSideEncryptionByDefault where the S3 API says Apply...
            {
                "ApplyServerSideEncryptionByDefault": r["ServerSideEncryptionByDefault"],
                **({"BucketKeyEnabled": bool(r["BucketKeyEnabled"])} if "BucketKeyEnabled" in r else {}),
            }
            for r in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})


def _create_table(ddb: Any, template: Mapping[str, Any], logical_id: str, name: str) -> None:
    ddb.create_table(**table_definition(template, logical_id, name))
    props = resource_properties(template, logical_id)
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": bool(ttl["Enabled"])},
        )
    pitr = props.get("PointInTimeRecoverySpecification")
    if pitr:
        ddb.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={
                "PointInTimeRecoveryEnabled": bool(pitr.get("PointInTimeRecoveryEnabled"))
            },
        )


def _queue_attributes(props: Mapping[str, Any], arns: Mapping[str, str]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds"):
        if key in props:
            attrs[key] = str(props[key])
    redrive = props.get("RedrivePolicy")
    if redrive:
        target = redrive["deadLetterTargetArn"]
        if isinstance(target, Mapping) and "Fn::GetAtt" in target:
            ref = target["Fn::GetAtt"]
            target = arns[ref[0] if isinstance(ref, list) else ref.split(".")[0]]
        attrs["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": target, "maxReceiveCount": int(redrive["maxReceiveCount"])}
        )
    return attrs


def create_stack_resources(
    session_or_clients: Any,
    names: StackNames | None = None,
    *,
    endpoint_url: str | None = None,
    s3_event_queue: str | None = None,
    template_path: Path | str | None = None,
) -> ResourceNames:
    """Create bucket, jobs and idempotency tables and the queues of template.yaml; return their names.

    `session_or_clients` is a boto3 Session (clients made with `endpoint_url`) or a mapping with "s3",
    "dynamodb" and "sqs" clients. With `s3_event_queue`, a queue of that name is created and the bucket
    sends it ObjectCreated notifications filtered exactly like the SubmitJob function's S3 events
    (what the local stack's relay turns into function invocations).
    """
    names = names or StackNames()
    template = load_template(template_path)
    clients = _clients(session_or_clients, endpoint_url)
    s3, ddb, sqs = clients["s3"], clients["dynamodb"], clients["sqs"]

    _create_bucket(s3, template, names.bucket)
    _create_table(ddb, template, JOBS_TABLE_ID, names.jobs_table)
    _create_table(ddb, template, IDEMPOTENCY_TABLE_ID, names.idempotency_table)

    physical = {
        "SubmitFailureQueue": names.submit_failure_queue,
        "ResultCopyDLQ": names.result_copy_dlq,
        "ResultCopyQueue": names.result_copy_queue,
    }
    urls: dict[str, str] = {}
    arns: dict[str, str] = {}
    for logical_id in QUEUE_IDS:  # dead-letter queues first: redrive policies need their ARNs
        attrs = _queue_attributes(resource_properties(template, logical_id), arns)
        url = sqs.create_queue(QueueName=physical[logical_id], Attributes=attrs)["QueueUrl"]
        urls[logical_id] = url
        arns[logical_id] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    event_queue_url = None
    if s3_event_queue:
        event_queue_url = sqs.create_queue(QueueName=s3_event_queue)["QueueUrl"]
        event_queue_arn = sqs.get_queue_attributes(QueueUrl=event_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        arns[s3_event_queue] = event_queue_arn
        configs = [{"QueueArn": event_queue_arn, **f} for f in submit_s3_filters(template)]
        s3.put_bucket_notification_configuration(
            Bucket=names.bucket, NotificationConfiguration={"QueueConfigurations": configs}
        )

    return ResourceNames(
        bucket=names.bucket,
        jobs_table=names.jobs_table,
        idempotency_table=names.idempotency_table,
        submit_failure_queue_url=urls["SubmitFailureQueue"],
        result_copy_dlq_url=urls["ResultCopyDLQ"],
        result_copy_queue_url=urls["ResultCopyQueue"],
        s3_event_queue_url=event_queue_url,
        queue_arns=arns,
    )
