"""Webhook: the provider's signed callback on a Function URL → job STORING + result-copy message, or FAILED."""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from faceswap_common.observability import logger, metrics
from faceswap_common.settings import Settings
from faceswap_common.webhook_intake import WebhookDeps, handle_webhook

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver

settings = Settings.from_env(require=["RESULT_COPY_QUEUE_URL"])  # fail at cold start
deps = WebhookDeps.from_settings(settings)  # AWS and HTTP clients are created on first use (aws_clients)


@cache
def resolver() -> LambdaFunctionUrlResolver:
    """The Powertools Function URL resolver with its routes, built once, on the first invocation.

    Why not at module level: importing `aws_lambda_powertools.event_handler` loads every resolver it offers
    (AppSync, API Gateway, Bedrock, ...), asyncio and all event data classes, ~0.15 s of Init; a warm
    container reuses the resolver, and bench/bench_pipeline.py shows the cost in "import + first invocation".
    """
    from aws_lambda_powertools.event_handler import LambdaFunctionUrlResolver, Response, content_types

    app = LambdaFunctionUrlResolver()

    @app.post("/")
    @app.post("/<path>")
    def webhook(path: str = "") -> Response:
        event = app.current_event
        raw_body = (event.decoded_body or "").encode("utf-8")  # the exact bytes that were signed
        outcome = handle_webhook(event.headers, raw_body, event.query_string_parameters or {}, deps)
        return Response(outcome.status_code, content_types.APPLICATION_JSON, json.dumps(outcome.body))

    return app


@logger.inject_lambda_context(correlation_id_path=correlation_paths.LAMBDA_FUNCTION_URL, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolver().resolve(event, context)
