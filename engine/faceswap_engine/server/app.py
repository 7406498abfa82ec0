"""FastAPI app speaking fal's queue protocol (protocol reference §7) in front of a Processor.

Routes (status/result/cancel accept the sub-path-less form that fal's clients use, and the with-sub-path form of
fal's per-endpoint OpenAPI):
  POST /{owner}/{alias}/{subpath}[?fal_webhook=…&fal_max_queue_length=…]     submit
  GET  /{owner}/{alias}[/{subpath}]/requests/{id}/status[?logs=1|0|true|false]  status (202 running, 200 done)
  GET  /{owner}/{alias}[/{subpath}]/requests/{id}/status/stream                 status as server-sent events
  GET  /{owner}/{alias}[/{subpath}]/requests/{id}                                result (200 output / 422 detail)
  PUT  /{owner}/{alias}[/{subpath}]/requests/{id}/cancel                         cancel (202 / 400)
  GET  /files/{id}/{name}, /.well-known/jwks.json, /health, /openapi.json, /docs
Input validation happens in the worker, not at submit, exactly as on fal: a bad input completes and its 422
appears on the result call (and in the webhook).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from faceswap_common.api_models import Endpoint
from faceswap_common.media_types import content_type_for

from ..errors import Cancelled, EngineError
from ..jobs import Job, JobContext, JobManager, JobState, Outcome, cancelled_outcome
from .config import ServerConfig
from .processor import EngineProcessor, Processor
from .signing import WebhookSigner
from .webhooks import WebhookSender

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_TRUE = {"1", "true", "yes", "on"}


def _detail(status: int, detail: Any, request_id: str | None = None, error_type: str | None = None) -> JSONResponse:
    headers = {"x-fal-request-id": request_id} if request_id else {}
    body: dict[str, Any] = {"detail": detail}
    if error_type:
        body["error_type"] = error_type
        headers["X-Fal-Error-Type"] = error_type
    return JSONResponse(body, status_code=status, headers=headers)


def _validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic errors as fal's 422 entries (the input echo is dropped: it may be a huge data URI)."""
    return [
        {"loc": ["body", *[str(p) for p in err["loc"]]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False)
    ]


def _failed(status: int, detail: list[dict[str, Any]]) -> Outcome:
    first = detail[0] if detail else {"msg": "invalid input", "type": "validation_error"}
    loc = ".".join(str(p) for p in first.get("loc", [])[1:])
    message = f"{loc}: {first['msg']}" if loc else str(first["msg"])
    return Outcome(status, {"detail": detail}, error=message, error_type=str(first["type"]))


def make_runner(processor: Processor):  # noqa: ANN201 - returns jobs.Runner
    """Validate with the seed models, run the processor, map every known error to a 422 ``detail``."""

    def run(job: Job, ctx: JobContext) -> Outcome:
        endpoint = Endpoint(job.endpoint)
        try:
            data = json.loads(job.body or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _failed(422, [{"loc": ["body"], "msg": "request body is not valid JSON", "type": "json_invalid"}])
        if not isinstance(data, dict):
            return _failed(422, [{"loc": ["body"], "msg": "request body must be a JSON object", "type": "dict_type"}])
        try:
            inputs = endpoint.input_model.model_validate(data)
        except ValidationError as exc:
            return _failed(422, _validation_detail(exc))
        try:
            output = processor.run(endpoint, inputs, ctx)
        except Cancelled:
            return cancelled_outcome()
        except EngineError as exc:
            ctx.log(f"{exc.code}: {exc.message}", "ERROR")
            return _failed(422, [exc.as_detail()])
        return Outcome(200, output)

    return run


class _Auth:
    """``Authorization: Key key_id:secret``; returns the key id (the webhook's user id)."""

    def __init__(self, keys: list[str]) -> None:
        self._keys = {k.partition(":")[0]: k.partition(":")[2] for k in keys}

    def check(self, request: Request) -> str | JSONResponse:
        if not self._keys:
            return "anonymous"
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if not header:
            return _detail(401, "Missing Authorization header. Expected 'Key <key_id>:<key_secret>'.")
        key_id, sep, secret = credentials.strip().partition(":")
        if scheme.lower() != "key" or not sep or not key_id or not secret:
            return _detail(401, "Invalid Key Authorization header format. Expected '<key_id>:<key_secret>'.")
        expected = self._keys.get(key_id)
        if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
            return _detail(401, "No user found for Key ID and Secret")
        return key_id


def _input_schemas() -> dict[str, Any]:
    """Request-body schema for the OpenAPI document: one of the four seed inputs."""
    defs: dict[str, Any] = {}
    refs = []
    for endpoint in Endpoint:
        schema = endpoint.input_model.model_json_schema(ref_template="#/components/schemas/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[endpoint.input_model.__name__] = schema
        refs.append({"$ref": f"#/components/schemas/{endpoint.input_model.__name__}"})
    for model in (Endpoint.VIDEO.output_model, Endpoint.IMAGE.output_model):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        defs.update(schema.pop("$defs", {}))
        defs[model.__name__] = schema
    return {"defs": defs, "oneOf": refs}


def create_app(config: ServerConfig, processor: Processor | None = None) -> FastAPI:
    """The server. ``processor`` defaults to the real engine; the queue, webhooks and files work the same."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    signer = WebhookSigner.load_or_create(config.data_dir)
    sender = WebhookSender(
        signer,
        max_attempts=config.webhook_max_attempts,
        backoff_s=config.webhook_backoff_s,
        max_backoff_s=config.webhook_max_backoff_s,
        timeout_s=config.webhook_timeout_s,
    )
    manager = JobManager(
        make_runner(processor or EngineProcessor(config)), config.data_dir, config.workers, on_complete=sender.send
    )
    auth = _Auth(config.keys)
    if not config.keys:
        log.warning("no key configured: the engine server accepts every request without authentication")
    stop = threading.Event()

    def purge_loop() -> None:
        import shutil

        while not stop.wait(60.0):
            for job in manager.purge(time.time() - config.retention_s):
                shutil.rmtree(config.data_dir / "files" / job.request_id, ignore_errors=True)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        manager.start()
        purger = threading.Thread(target=purge_loop, name="engine-purge", daemon=True)
        purger.start()
        try:
            yield
        finally:
            stop.set()
            manager.shutdown()
            sender.close()

    schemas = _input_schemas()
    app = FastAPI(
        title="faceswap-engine",
        version="0.1.0",
        description="Offline face swap behind fal's queue protocol (half-moon-ai/ai-face-swap schema).",
        lifespan=lifespan,
    )
    app.state.config, app.state.manager, app.state.signer, app.state.sender = config, manager, signer, sender

    def base_url(request: Request) -> str:
        return config.public_url or str(request.base_url).rstrip("/")

    def urls(job: Job, owner: str, alias: str) -> dict[str, str]:
        root = f"{job.base_url}/{owner}/{alias}/requests/{job.request_id}"
        return {"response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}

    def lookup(request: Request, owner: str, alias: str, request_id: str) -> Job | JSONResponse:
        user = auth.check(request)
        if isinstance(user, JSONResponse):
            return user
        if f"{owner}/{alias}" != config.app_id.strip("/"):
            return _detail(404, f"Application '{owner}/{alias}' not found")
        job = manager.get(request_id)
        if job is None or (job.user_id != user and user != "anonymous"):
            return _detail(404, f"Request '{request_id}' not found")
        return job

    def status_body(job: Job, owner: str, alias: str, with_logs: bool) -> tuple[int, dict[str, Any]]:
        state, logs, outcome, position = manager.snapshot(job)
        body: dict[str, Any] = {"status": state.value, "request_id": job.request_id, **urls(job, owner, alias)}
        if state == JobState.IN_QUEUE:
            body["queue_position"] = position
        body["logs"] = logs if with_logs else None
        if state == JobState.COMPLETED:
            body["metrics"] = {"inference_time": job.inference_time}
            if outcome is not None and not outcome.ok:
                body["error"] = outcome.error
                body["error_type"] = outcome.error_type
            return 200, body
        return 202, body

    # --- fixed routes first, so the catch-all app routes never shadow them --------------------------------
    @app.get("/.well-known/jwks.json", tags=["webhooks"], summary="Public keys that sign the webhooks")
    async def jwks() -> JSONResponse:
        return JSONResponse(signer.jwks(), headers={"Cache-Control": "public, max-age=3600"})

    @app.get("/health", tags=["ops"], summary="Liveness and queue length")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "queue_length": manager.queue_length(), "workers": config.workers}

    @app.get("/files/{request_id}/{name}", tags=["files"], summary="A result file (what output URLs point at)")
    async def files(request_id: str, name: str) -> Response:
        if not _NAME.match(request_id) or not _NAME.match(name):
            return _detail(404, "File not found")
        path = config.data_dir / "files" / request_id / name
        if not path.is_file():
            return _detail(404, "File not found")
        return FileResponse(path, media_type=content_type_for(name), filename=name)

    # --- queue protocol -------------------------------------------------------------------------------------
    @app.post(
        "/{owner}/{alias}/{subpath}",
        tags=["queue"],
        summary="Submit a request to the queue",
        openapi_extra={"requestBody": {"required": True,
                                       "content": {"application/json": {"schema": {"oneOf": schemas["oneOf"]}}}}},
    )
    async def submit(request: Request, owner: str, alias: str, subpath: str) -> JSONResponse:
        user = auth.check(request)
        if isinstance(user, JSONResponse):
            return user
        if f"{owner}/{alias}" != config.app_id.strip("/"):
            return _detail(404, f"Application '{owner}/{alias}' not found")
        try:
            endpoint = Endpoint(subpath)
        except ValueError:
            return _detail(404, f"Endpoint '{subpath}' not found; known: {', '.join(e.value for e in Endpoint)}")
        limit = request.query_params.get("fal_max_queue_length")
        if limit is not None and limit.isdigit() and manager.queue_length() >= int(limit):
            return _detail(429, "Queue is full (fal_max_queue_length)", error_type="queue_full")
        webhook = request.query_params.get("fal_webhook") or None
        if webhook is not None and not webhook.lower().startswith(("http://", "https://")):
            return _detail(400, "fal_webhook must be an http(s) URL", error_type="bad_request")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > config.max_request_bytes:
            return _detail(413, f"Request body is larger than {config.max_request_bytes} bytes", error_type="bad_request")
        body = await request.body()
        if len(body) > config.max_request_bytes:
            return _detail(413, f"Request body is larger than {config.max_request_bytes} bytes", error_type="bad_request")
        job = Job(endpoint=endpoint.value, body=body, user_id=user, webhook_url=webhook, base_url=base_url(request))
        position = manager.submit(job)
        body = {"request_id": job.request_id, **urls(job, owner, alias), "queue_position": position,
                "status": "IN_QUEUE"}
        return JSONResponse(body, headers={"x-fal-request-id": job.request_id})

    async def status(request: Request, owner: str, alias: str, request_id: str) -> JSONResponse:
        job = lookup(request, owner, alias, request_id)
        if isinstance(job, JSONResponse):
            return job
        with_logs = request.query_params.get("logs", "0").strip().lower() in _TRUE
        code, body = status_body(job, owner, alias, with_logs)
        return JSONResponse(body, status_code=code, headers={"x-fal-request-id": job.request_id})

    async def status_stream(request: Request, owner: str, alias: str, request_id: str) -> Response:
        job = lookup(request, owner, alias, request_id)
        if isinstance(job, JSONResponse):
            return job
        with_logs = request.query_params.get("logs", "0").strip().lower() in _TRUE

        async def events() -> AsyncIterator[bytes]:
            last = None
            while True:
                code, body = status_body(job, owner, alias, with_logs)
                text = json.dumps(body)
                if text != last:
                    last = text
                    yield f"data: {text}\n\n".encode()
                if code == 200 or await request.is_disconnected():
                    return
                await asyncio.sleep(0.2)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"x-fal-request-id": job.request_id, "Cache-Control": "no-cache"})

    async def result(request: Request, owner: str, alias: str, request_id: str) -> JSONResponse:
        job = lookup(request, owner, alias, request_id)
        if isinstance(job, JSONResponse):
            return job
        state, _, outcome, _ = manager.snapshot(job)
        if state != JobState.COMPLETED or outcome is None:
            return _detail(400, "Request is still in progress", job.request_id)
        headers = {"x-fal-request-id": job.request_id}
        if outcome.error_type and outcome.status_code != 422:
            headers["X-Fal-Error-Type"] = outcome.error_type
        return JSONResponse(outcome.body, status_code=outcome.status_code, headers=headers)

    async def cancel(request: Request, owner: str, alias: str, request_id: str) -> JSONResponse:
        job = lookup(request, owner, alias, request_id)
        if isinstance(job, JSONResponse):
            return job
        answer = manager.cancel(job.request_id)
        code = 202 if answer == "CANCELLATION_REQUESTED" else 400
        return JSONResponse({"status": answer}, status_code=code, headers={"x-fal-request-id": job.request_id})

    for prefix in ("/{owner}/{alias}", "/{owner}/{alias}/{subpath}"):
        root = f"{prefix}/requests/{{request_id}}"
        hidden = prefix.endswith("{subpath}")
        app.add_api_route(f"{root}/status/stream", status_stream, methods=["GET"], tags=["queue"],
                          summary="Status as server-sent events", include_in_schema=not hidden)
        app.add_api_route(f"{root}/status", status, methods=["GET"], tags=["queue"],
                          summary="Request status (202 while queued/running, 200 when completed)",
                          include_in_schema=not hidden)
        app.add_api_route(f"{root}/cancel", cancel, methods=["PUT"], tags=["queue"], summary="Cancel a request",
                          include_in_schema=not hidden)
        app.add_api_route(root, result, methods=["GET"], tags=["queue"],
                          summary="Result (200 output, 422 detail for input errors)", include_in_schema=not hidden)

    default_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = default_openapi()
            spec.setdefault("components", {}).setdefault("schemas", {}).update(schemas["defs"])
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
