"""ReconcileJobs (schedule): settle jobs the event flow left behind (missed webhooks, crashed submits, stuck copies)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from faceswap_common.observability import logger, metrics
from faceswap_common.reconcile import ReconcileConfig, ReconcileDeps, reconcile
from faceswap_common.settings import Settings

# Stop picking up jobs this long before the Lambda deadline: one job's status + result calls, each at most
# 3 attempts of 15 s with backoff (see reconcile.reconciler_provider_client), must still fit.
SAFETY_MARGIN_SECONDS = 120.0
settings = Settings.from_env(require=["RESULT_COPY_QUEUE_URL", "WEBHOOK_URL", "FAL_KEY_SECRET_ARN"])  # fail at cold start
deps = ReconcileDeps.from_settings(settings, ReconcileConfig.from_env())


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    remaining = context.get_remaining_time_in_millis() / 1000
    budget = remaining - min(SAFETY_MARGIN_SECONDS, 0.4 * remaining)
    return reconcile(deps, budget_seconds=budget).model_dump(mode="json")
