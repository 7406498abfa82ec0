"""SubmitJob: S3 ObjectCreated (inbox/, jobs/*.json) → a job record and one provider submission per object."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from faceswap_common import aws_clients
from faceswap_common.observability import logger, metrics
from faceswap_common.settings import Settings
from faceswap_common.submission import SubmitDeps, idempotent_submitter, object_ref_from_record

settings = Settings.from_env(require=["IDEMPOTENCY_TABLE", "WEBHOOK_URL", "FAL_KEY_SECRET_ARN"])  # fail at cold start
deps = SubmitDeps.from_settings(settings)  # AWS clients are created on first use (faceswap_common.aws_clients)


@cache
def idempotent_submit() -> tuple[Any, Callable[[Any], dict[str, Any]]]:
    """(IdempotencyConfig, submit) built once, on the first invocation.

    Why not at module level: importing Powertools idempotency imports boto3 and its DynamoDB persistence layer
    builds a client, ~0.4 s that an Init phase would pay before any event; a warm container reuses both.
    """
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, IdempotencyConfig

    config = IdempotencyConfig(expires_after_seconds=24 * 3600)
    persistence = DynamoDBPersistenceLayer(
        table_name=settings.need("IDEMPOTENCY_TABLE"),
        boto3_client=aws_clients.client("dynamodb", settings.aws_endpoint_url),
    )
    return config, idempotent_submitter(deps, persistence, config)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    config, submit = idempotent_submit()
    config.register_lambda_context(context)
    records = event.get("Records") or []  # s3:TestEvent has none
    return {"outcomes": [submit(object_ref_from_record(record)) for record in records]}
