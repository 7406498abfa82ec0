"""Helpers shared by the unit tests: names, the jobs table definition, object puts, an Ed25519 signer."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

BUCKET = "faceswap-media-test"
TABLE = "faceswap-jobs-test"


def jobs_table_definition(name: str) -> dict[str, Any]:
    """From template.yaml when the loader exists (schema cannot drift), else the schema of contracts.md."""
    try:
        from faceswap_local.template_resources import load_template, table_definition

        return table_definition(load_template(), "JobsTable", name)
    except (ImportError, FileNotFoundError, KeyError):
        return {
            "TableName": name,
            "KeySchema": [{"AttributeName": "job_id", "KeyType": "HASH"}],
            "AttributeDefinitions": [
                {"AttributeName": "job_id", "AttributeType": "S"},
                {"AttributeName": "status", "AttributeType": "S"},
                {"AttributeName": "created_at", "AttributeType": "S"},
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": [
                {
                    "IndexName": "status-created_at",
                    "KeySchema": [
                        {"AttributeName": "status", "KeyType": "HASH"},
                        {"AttributeName": "created_at", "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
        }


def put(s3: Any, key: str, body: bytes = b"x" * 16, content_type: str | None = None) -> None:
    extra = {"ContentType": content_type} if content_type else {}
    s3.put_object(Bucket=BUCKET, Key=key, Body=body, **extra)


class Signer:
    """An Ed25519 key pair as fal holds it, with its JWKS entry."""

    def __init__(self, kid: str = "k1") -> None:
        self.private = Ed25519PrivateKey.generate()
        self.kid = kid

    def jwk(self) -> dict[str, str]:
        raw = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode(), "kid": self.kid}

    def headers(self, request_id: str, user_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        from faceswap_common.signatures import signed_message

        sig = self.private.sign(signed_message(request_id, user_id, str(timestamp), body)).hex()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": str(timestamp),
            "X-Fal-Webhook-Signature": sig,
        }
