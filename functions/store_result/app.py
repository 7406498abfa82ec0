"""StoreResult: ResultCopyQueue → stream each job's result into outputs/<job_id>/ → job COMPLETED (or FAILED)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from faceswap_common.observability import logger, metrics
from faceswap_common.result_copy import CopyDeps, store_result
from faceswap_common.settings import Settings
from faceswap_common.webhook_intake import CopyRequest

MAX_RECEIVES = 5  # ResultCopyQueue's RedrivePolicy maxReceiveCount in template.yaml
settings = Settings.from_env()  # fail at cold start
deps = CopyDeps.from_settings(settings)
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)  # report, not raise


def record_handler(record: SQSRecord) -> str:
    request = CopyRequest.model_validate_json(record.body)
    attempt = int(record.attributes.approximate_receive_count or 1)
    return store_result(request.job_id, deps, attempt=attempt, max_attempts=MAX_RECEIVES)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
