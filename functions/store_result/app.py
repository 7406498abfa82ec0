"""StoreResult: ResultCopyQueue → stream each job's result into outputs/<job_id>/ → job COMPLETED (or FAILED)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from faceswap_common.observability import logger, metrics
from faceswap_common.result_copy import CopyDeps, store_result
from faceswap_common.settings import Settings
from faceswap_common.webhook_intake import CopyRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch import BatchProcessor
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

MAX_RECEIVES = 5  # ResultCopyQueue's RedrivePolicy maxReceiveCount in template.yaml
settings = Settings.from_env()  # fail at cold start
deps = CopyDeps.from_settings(settings)  # AWS and HTTP clients are created on first use (aws_clients)


@cache
def processor() -> BatchProcessor:
    """The Powertools SQS batch processor, built once, on the first invocation.

    Why not at module level: the batch utility imports asyncio and every event data class (~0.1 s of Init);
    a warm container reuses it, and bench/bench_pipeline.py shows the cost in "import + first invocation".
    """
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

    return BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)  # report, not raise


def record_handler(record: SQSRecord) -> str:
    request = CopyRequest.model_validate_json(record.body)
    attempt = int(record.attributes.approximate_receive_count or 1)
    return store_result(request.job_id, deps, attempt=attempt, max_attempts=MAX_RECEIVES)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.batch import process_partial_response

    return process_partial_response(event=event, record_handler=record_handler, processor=processor(),
                                    context=context)
