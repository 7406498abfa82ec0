"""ReconcileJobs (schedule): settle jobs the event flow left behind (missed webhooks, crashed submits, stuck copies)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from faceswap_common.observability import logger, metrics
from faceswap_common.reconcile import ReconcileConfig, ReconcileDeps, reconcile
from faceswap_common.settings import Settings

SAFETY_MARGIN_SECONDS = 10.0  # stop picking up jobs this long before the Lambda deadline
settings = Settings.from_env(require=["RESULT_COPY_QUEUE_URL", "WEBHOOK_URL", "FAL_KEY_SECRET_ARN"])  # fail at cold start
deps = ReconcileDeps.from_settings(settings, ReconcileConfig.from_env())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    budget = max(1.0, context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_SECONDS)
    return reconcile(deps, budget_seconds=budget).model_dump(mode="json")
