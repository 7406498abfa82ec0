"""Lambda event payloads exactly as AWS delivers them, built from what the local stack sees.

The handlers are the same modules that run in AWS, so they must receive the same shapes: an S3 notification
record with every field real S3 sends (moto's own record lacks several and encodes ``/`` in keys), a Lambda
Function URL event (payload version 2.0), SQS event records and an EventBridge scheduled event.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, quote_plus, unquote_plus

ACCOUNT_ID = "123456789012"
_SEQUENCE = itertools.count()

# Function URLs pass these content types as text; everything else arrives base64-encoded.
_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "application/x-www-form-urlencoded")


def _iso_ms(moment: datetime | None = None) -> str:
    moment = moment or datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def s3_key_for_event(key: str) -> str:
    """Encode an object key the way S3 does in notifications: form-encoding with '/' kept (space → '+')."""
    return quote_plus(key, safe="/")


def next_sequencer() -> str:
    """A hex sequencer that grows with every event, like S3's per-key ``object.sequencer``."""
    return f"{time.time_ns():016X}{next(_SEQUENCE) % 256:02X}"


def is_s3_test_event(body: Mapping[str, Any]) -> bool:
    """S3 (and moto) send one ``s3:TestEvent`` when a notification is configured; Lambda never sees it."""
    return body.get("Event") == "s3:TestEvent"


def real_s3_record(moto_record: Mapping[str, Any], *, source_ip: str = "127.0.0.1") -> dict[str, Any]:
    """Turn one record of moto's S3→SQS message into the record real S3 hands to Lambda."""
    s3 = moto_record.get("s3", {})
    bucket = s3.get("bucket", {})
    obj = s3.get("object", {})
    key = unquote_plus(obj.get("key", ""))
    out_object: dict[str, Any] = {
        "key": s3_key_for_event(key),
        "size": int(obj.get("size", 0)),
        "eTag": str(obj.get("eTag", "")).strip('"'),
        "sequencer": next_sequencer(),
    }
    if obj.get("versionId"):
        out_object["versionId"] = obj["versionId"]
    name = bucket.get("name", "")
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": moto_record.get("awsRegion", "us-east-1"),
        "eventTime": moto_record.get("eventTime") or _iso_ms(),
        "eventName": moto_record.get("eventName", "ObjectCreated:Put"),
        "userIdentity": {"principalId": "AWS:AIDALOCALSTACKUSER"},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {
            "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
            "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes * 2).decode(),
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": s3.get("configurationId", "local-stack"),
            "bucket": {
                "name": name,
                "ownerIdentity": {"principalId": "A3LOCALSTACKOWNER"},
                "arn": bucket.get("arn", f"arn:aws:s3:::{name}"),
            },
            "object": out_object,
        },
    }


def s3_events_from_moto_message(body_text: str) -> list[dict[str, Any]]:
    """One Lambda S3 event per record of a moto notification message; [] for test events."""
    body = json.loads(body_text)
    if is_s3_test_event(body):
        return []
    return [{"Records": [real_s3_record(record)]} for record in body.get("Records", [])]


def function_url_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    source_ip: str,
    url_id: str,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """A Lambda Function URL request event (payload format 2.0) for one HTTP request."""
    merged: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        lower = name.lower()
        if lower == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        merged[lower] = f"{merged[lower]},{value}" if lower in merged else value
    content_type = merged.get("content-type", "")
    is_text = not body or any(content_type.startswith(t) for t in _TEXT_TYPES)
    now = datetime.now(timezone.utc)
    domain = f"{url_id}.lambda-url.{region}.on.aws"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path or "/",
        "rawQueryString": raw_query,
        "headers": merged,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": url_id,
            "domainName": domain,
            "domainPrefix": url_id,
            "http": {
                "method": method.upper(),
                "path": raw_path or "/",
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": merged.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if raw_query:
        params: dict[str, str] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True):
            params[name] = f"{params[name]},{value}" if name in params else value
        event["queryStringParameters"] = params
    if body:
        event["body"] = body.decode("utf-8") if is_text else base64.b64encode(body).decode()
    return event


def function_url_response(result: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of a Function URL response, by Lambda's rules for what a handler returns."""
    if isinstance(result, Mapping) and "statusCode" in result:
        headers = {str(k): str(v) for k, v in (result.get("headers") or {}).items()}
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        return int(result["statusCode"]), headers, raw
    body = result if isinstance(result, str) else json.dumps(result)
    return 200, {"content-type": "application/json"}, body.encode()


def sqs_event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The SQS event Lambda's event source mapping delivers for a batch of received messages."""
    records = []
    for message in messages:
        body = message["Body"]
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": body,
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": {
                    name: {
                        "stringValue": attr.get("StringValue"),
                        "binaryValue": attr.get("BinaryValue"),
                        "stringListValues": [],
                        "binaryListValues": [],
                        "dataType": attr.get("DataType", "String"),
                    }
                    for name, attr in (message.get("MessageAttributes") or {}).items()
                },
                "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
        )
    return {"Records": records}


def scheduled_event(rule_name: str, region: str) -> dict[str, Any]:
    """The EventBridge event a schedule rule sends to its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }
