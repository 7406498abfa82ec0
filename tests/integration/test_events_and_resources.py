"""events/*.json parse with Powertools' own models, and template_resources builds the stack's data plane."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote_plus

import boto3
import pytest
from faceswap_local.template_resources import StackNames, create_stack_resources, load_template
from moto import mock_aws

EVENTS = Path(__file__).resolve().parents[2] / "events"
S3_EVENTS = {
    "s3_put_inbox_video.json": "inbox/alice/party.mp4",
    "s3_put_inbox_image.json": "inbox/alice/portrait.jpg",
    "s3_put_manifest_single.json": "jobs/single.json",
    "s3_put_manifest_multi.json": "jobs/multi.json",
    "s3_put_key_spaces_plus.json": "inbox/alice/my clip+1.mp4",
}


@pytest.mark.parametrize(("name", "key"), sorted(S3_EVENTS.items()))
def test_s3_events_are_real_s3_shapes(name: str, key: str) -> None:
    from aws_lambda_powertools.utilities.parser.models import S3Model

    event = S3Model.model_validate(json.loads((EVENTS / name).read_text()))
    raw = event.Records[0].s3.object.key
    assert "%2F" not in raw  # real S3 keeps '/' (moto encodes it; that is moto's quirk, not S3's)
    assert unquote_plus(raw) == key


@pytest.mark.parametrize("name", ["webhook_ok.json", "webhook_error.json", "webhook_bad_signature.json"])
def test_webhook_events_are_function_url_events(name: str) -> None:
    from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel
    from faceswap_common.api_models import WebhookPayload

    raw = json.loads((EVENTS / name).read_text())
    event = LambdaFunctionUrlModel.model_validate(raw)
    assert event.requestContext.http.method == "POST" and raw["routeKey"] == "$default"
    payload = WebhookPayload.model_validate_json(raw["body"])
    assert payload.status == ("ERROR" if name == "webhook_error.json" else "OK")
    assert raw["body"] == json.dumps(json.loads(raw["body"]), sort_keys=True)  # fal's serialization


def test_sqs_event_is_an_sqs_event() -> None:
    from aws_lambda_powertools.utilities.parser.models import SqsModel

    event = SqsModel.model_validate(json.loads((EVENTS / "sqs_store_result.json").read_text()))
    assert set(json.loads(event.Records[0].body)) == {"job_id", "request_id"}


def test_env_json_declares_only_variables_the_template_declares() -> None:
    """sam local invoke passes only variables declared in the template's Environment."""
    template = load_template()
    declared = set(template["Globals"]["Function"]["Environment"]["Variables"])
    declared |= set(template["Resources"]["SubmitJobFunction"]["Properties"]["Environment"]["Variables"])
    env = json.loads((EVENTS / "env.json").read_text())
    for section in env.values():
        assert set(section) <= declared, set(section) - declared


def test_create_stack_resources_in_process_with_s3_notifications() -> None:
    with mock_aws():
        names = create_stack_resources(boto3.Session(region_name="us-east-1"), StackNames(), s3_event_queue="relay")
        s3, sqs, ddb = (boto3.client(s, region_name="us-east-1") for s in ("s3", "sqs", "dynamodb"))
        table = ddb.describe_table(TableName=names.jobs_table)["Table"]
        assert table["KeySchema"] == [{"AttributeName": "job_id", "KeyType": "HASH"}]
        assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == ["status-created_at"]
        assert ddb.describe_time_to_live(TableName=names.jobs_table)["TimeToLiveDescription"]["AttributeName"] == "expires_at"
        assert ddb.describe_time_to_live(TableName=names.idempotency_table)["TimeToLiveDescription"]["AttributeName"] == "expiration"
        attrs = sqs.get_queue_attributes(QueueUrl=names.result_copy_queue_url, AttributeNames=["All"])["Attributes"]
        assert json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"] == names.queue_arns["ResultCopyDLQ"]
        assert attrs["VisibilityTimeout"] == "5400"
        assert s3.get_public_access_block(Bucket=names.bucket)["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
        for key in ("inbox/alice/a b+1.mp4", "jobs/m.json", "jobs/m.txt", "outputs/j/o.mp4", "faces/alice.jpg"):
            s3.put_object(Bucket=names.bucket, Key=key, Body=b"x")
        keys = []
        for message in sqs.receive_message(QueueUrl=names.s3_event_queue_url, MaxNumberOfMessages=10)["Messages"]:
            keys += [unquote_plus(r["s3"]["object"]["key"]) for r in json.loads(message["Body"]).get("Records", [])]
        assert sorted(keys) == ["inbox/alice/a b+1.mp4", "jobs/m.json"]  # the function's filters, nothing else


def test_flow_modules_never_import_the_xray_tracer() -> None:
    """Tracer pulls in aws_xray_sdk (~0.7 s of cold start); the pipeline does not use X-Ray.

    (Powertools' package __init__ imports its tracing module, which loads aws_xray_sdk only when a Tracer is made.)
    """
    import subprocess
    import sys

    code = ("import sys; import faceswap_common.submission, faceswap_common.webhook_intake, "
            "faceswap_common.result_copy, faceswap_common.observability; "
            "print(any(m.startswith('aws_xray_sdk') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2] / "layers/common")
    assert out.stdout.strip() == "False"
