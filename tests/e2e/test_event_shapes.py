"""The local stack hands the handlers what AWS would: checked against Powertools' strict parser models."""

from __future__ import annotations

import json

from aws_lambda_powertools.utilities.parser.models import LambdaFunctionUrlModel, S3Model, SqsModel

from faceswap_local.events import (
    function_url_event,
    function_url_response,
    s3_events_from_moto_message,
    sqs_event,
)

MOTO_MESSAGE = json.dumps({"Records": [{
    "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
    "eventTime": "2026-11-23T22:32:54.017Z", "eventName": "ObjectCreated:Put",
    "s3": {"s3SchemaVersion": "1.0", "configurationId": "cfg", "bucket": {"name": "b-x", "arn": "arn:aws:s3:::b-x"},
           "object": {"key": "inbox%2Fal+ice%2Fmy+clip%2B1.mp4", "size": 1, "eTag": "9dd4e461268c8034f5c8564e155c67a6"}},
}]})


def test_s3_event_is_what_real_s3_sends() -> None:
    (event,) = s3_events_from_moto_message(MOTO_MESSAGE)
    parsed = S3Model.model_validate(event)  # moto's own record fails this (4 missing fields)
    record = parsed.Records[0]
    assert event["Records"][0]["s3"]["object"]["key"] == "inbox/al+ice/my+clip%2B1.mp4"  # '/' kept, like S3
    assert record.s3.object.sequencer and record.s3.bucket.ownerIdentity.principalId
    assert record.eventVersion == "2.1"


def test_s3_test_event_is_skipped() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b-x"})
    assert s3_events_from_moto_message(body) == []


def test_sequencers_grow() -> None:
    first = s3_events_from_moto_message(MOTO_MESSAGE)[0]["Records"][0]["s3"]["object"]["sequencer"]
    second = s3_events_from_moto_message(MOTO_MESSAGE)[0]["Records"][0]["s3"]["object"]["sequencer"]
    assert len(first) == len(second) and second > first


def test_function_url_event() -> None:
    body = b'{"request_id":"r1","status":"OK"}'
    event = function_url_event(method="POST", raw_path="/", raw_query="job_id=abc&x=1&x=2",
                               headers=[("Content-Type", "application/json"), ("X-Fal-Webhook-Signature", "ab")],
                               body=body, source_ip="127.0.0.1", url_id="abc123")
    parsed = LambdaFunctionUrlModel.model_validate(event)
    assert parsed.rawQueryString == "job_id=abc&x=1&x=2"
    assert event["queryStringParameters"] == {"job_id": "abc", "x": "1,2"}
    assert event["headers"]["x-fal-webhook-signature"] == "ab"
    assert event["body"] == body.decode() and event["isBase64Encoded"] is False
    assert event["requestContext"]["http"]["method"] == "POST"
    assert event["requestContext"]["domainName"] == "abc123.lambda-url.us-east-1.on.aws"


def test_binary_body_is_base64() -> None:
    event = function_url_event(method="PUT", raw_path="/x", raw_query="", headers=[("content-type", "image/png")],
                               body=b"\x89PNG", source_ip="127.0.0.1", url_id="abc")
    assert event["isBase64Encoded"] is True and "queryStringParameters" not in event


def test_function_url_response_rules() -> None:
    assert function_url_response({"statusCode": 401, "body": "no"}) == (401, {}, b"no")
    assert function_url_response({"ok": True})[0] == 200


def test_sqs_event() -> None:
    message = {"MessageId": "m1", "ReceiptHandle": "rh", "Body": "{}", "MD5OfBody": "x",
               "Attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1", "SenderId": "s",
                              "ApproximateFirstReceiveTimestamp": "1"}}
    event = sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")
    SqsModel.model_validate(event)
    assert event["Records"][0]["messageId"] == "m1"


def test_function_environment_follows_the_template() -> None:
    from faceswap_local.config import REPO_ROOT
    from faceswap_local.lambda_host import function_environment, handler_location
    from faceswap_local.template_resources import load_template

    template = load_template(REPO_ROOT / "template.yaml")
    env = function_environment(
        template, "SubmitJobFunction",
        {"ProviderBaseUrl": "http://127.0.0.1:5051", "FalKeySecretArn": "arn:x", "EndpointUrl": "http://127.0.0.1:5050"},
        {"MEDIA_BUCKET": "b-local", "WEBHOOK_URL": "http://127.0.0.1:5052/"},
    )
    assert env["PROVIDER_BASE_URL"] == "http://127.0.0.1:5051"  # a template parameter, given its local value
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5050"
    assert env["PROVIDER_APP_ID"] == "half-moon-ai/ai-face-swap"  # the template's default
    assert env["MEDIA_BUCKET"] == "b-local" and env["WEBHOOK_URL"] == "http://127.0.0.1:5052/"
    assert env["EVENT_BUS_NAME"] == "default"  # a literal of Globals
    path, func = handler_location(template, "WebhookFunction", REPO_ROOT)
    assert path == REPO_ROOT / "functions" / "webhook" / "app.py" and func == "lambda_handler"
