"""SubmitJob: S3 ObjectCreated (inbox/, jobs/*.json) → a job record and one provider submission per object."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig
from aws_lambda_powertools.utilities.typing import LambdaContext
from faceswap_common.observability import logger, metrics
from faceswap_common.settings import Settings
from faceswap_common.submission import SubmitDeps, idempotent_submitter, object_ref_from_record

settings = Settings.from_env(require=["IDEMPOTENCY_TABLE", "WEBHOOK_URL", "FAL_KEY_SECRET_ARN"])  # fail at cold start
deps = SubmitDeps.from_settings(settings)
idempotency = IdempotencyConfig(expires_after_seconds=24 * 3600)
endpoint = {"endpoint_url": settings.aws_endpoint_url} if settings.aws_endpoint_url else {}
persistence = DynamoDBPersistenceLayer(
    table_name=settings.need("IDEMPOTENCY_TABLE"), boto3_client=boto3.client("dynamodb", **endpoint)
)
submit = idempotent_submitter(deps, persistence, idempotency)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    idempotency.register_lambda_context(context)
    records = event.get("Records") or []  # s3:TestEvent has none
    return {"outcomes": [submit(object_ref_from_record(record)) for record in records]}
