"""A fal-queue-protocol server on loopback with switchable faults, that counts every submit POST.

Why our own (and not tests/integration's): the resilience suites need faults per route (status codes,
slowness past the client's timeout, an answer sent only after the webhook was delivered), results that
break mid-stream or redirect elsewhere, rotating signing keys, and an exact count of POSTs per job so a
duplicate submission (a second bill) cannot go unnoticed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from faceswap_engine.server.testing import ServerThread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse

KEY_ID = "resil-key-id"
KEY_SECRET = "S3CR3T-resilience-9f2c7d41e8"  # the value no log line may ever show
KEY = f"{KEY_ID}:{KEY_SECRET}"
USER_ID = "user_resilience"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Fault:
    """One injected misbehaviour: answer `status` (with `body`), or sleep `delay` seconds first."""

    status: int | None = None
    delay: float = 0.0
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Req:
    request_id: str
    job_id: str | None
    endpoint: str
    input: dict[str, Any]
    webhook_url: str | None
    state: str = "IN_QUEUE"
    result_status: int = 200
    result_body: dict[str, Any] | None = None
    cancelled: bool = False


@dataclass
class Delivery:
    """A signed webhook as fal would POST it."""

    url: str
    headers: dict[str, str]
    body: bytes

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.url).query))


class FaultProvider:
    """Queue routes + /files + /redirect + JWKS. Knobs: `faults[route]` (a list consumed in order),
    `down` (answers nothing: the port is closed by pointing clients elsewhere), `on_submit` callback."""

    ROUTES = ("submit", "status", "result", "cancel", "files")

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self.app = self._build()
        self._server: ServerThread | None = None
        self._base_key = Ed25519PrivateKey.generate()  # stable across tests: handlers cache the JWKS
        self.reset()

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> FaultProvider:
        self._server = ServerThread(self.app, port=self.port).start()  # real HTTP on loopback
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def reset(self) -> None:
        with self._lock:
            self.requests: dict[str, Req] = {}
            self.posts: list[tuple[str | None, bool]] = []  # (job_id, accepted) for every submit POST
            self.faults: dict[str, list[Fault]] = {r: [] for r in self.ROUTES}
            self.files: dict[str, bytes] = {}
            self.file_gets: list[str] = []
            self.break_files = 0
            self.on_submit: Callable[[Req], None] | None = None
            self.signing_keys = [self._base_key]
            self.published_keys = list(self.signing_keys)
            self.jwks_gets = 0
            self.faults_served = 0

    # -- counting -----------------------------------------------------------------------------------
    def accepted_posts_by_job(self) -> dict[str | None, int]:
        out: dict[str | None, int] = {}
        for job_id, accepted in self.posts:
            if accepted:
                out[job_id] = out.get(job_id, 0) + 1
        return out

    def inject(self, route: str, *faults: Fault) -> None:
        self.faults[route].extend(faults)

    def _take(self, route: str) -> Fault | None:
        with self._lock:
            if self.faults[route]:
                self.faults_served += 1
                return self.faults[route].pop(0)
        return None

    # -- signing ------------------------------------------------------------------------------------
    def jwks(self) -> dict[str, Any]:
        keys = []
        for index, key in enumerate(self.published_keys):
            raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            keys.append({"kty": "OKP", "crv": "Ed25519", "kid": f"k{index}",
                         "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()})
        return {"keys": keys}

    def rotate(self) -> Ed25519PrivateKey:
        """A new signing key; the JWKS publishes only the new one (the old key is removed)."""
        new = Ed25519PrivateKey.generate()
        self.signing_keys = [new]
        self.published_keys = [new]
        return new

    def sign(self, body: bytes, request_id: str, *, timestamp: int | None = None,
             key: Ed25519PrivateKey | None = None, user_id: str = USER_ID) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        message = f"{request_id}\n{user_id}\n{ts}\n{hashlib.sha256(body).hexdigest()}".encode()
        signature = (key or self.signing_keys[0]).sign(message).hex()
        return {
            "x-fal-webhook-request-id": request_id,
            "x-fal-webhook-user-id": user_id,
            "x-fal-webhook-timestamp": ts,
            "x-fal-webhook-signature": signature,
        }

    # -- processing (driven by the tests) -----------------------------------------------------------
    def request_for(self, job_id: str) -> Req:
        found = [r for r in self.requests.values() if r.job_id == job_id]
        assert len(found) == 1, f"expected one provider request for job {job_id}, got {len(found)}"
        return found[0]

    def complete(self, req: Req, *, outcome: str = "ok", size: int = 2048, result_url: str | None = None,
                 file_name: str | None = None, timestamp: int | None = None) -> Delivery:
        """Finish the request (result file published) and return its signed webhook."""
        video = req.endpoint.startswith("faceswapvideo")
        ext, ctype = ("mp4", "video/mp4") if video else ("png", "image/png")
        name = f"{req.request_id}.{ext}"
        data = (hashlib.sha256(req.request_id.encode()).digest() * (size // 32 + 1))[:size]
        self.files[name] = data
        file = {"url": result_url or f"{self.base_url}/files/{name}", "content_type": ctype,
                "file_name": file_name or f"swapped.{ext}", "file_size": len(data)}
        output: dict[str, Any] = {"video" if video else "image": file, "processing_time_ms": 321}
        req.state = "COMPLETED"
        if outcome == "ok":
            req.result_status, req.result_body = 200, output
            body = {"error": None, "gateway_request_id": req.request_id, "payload": output,
                    "request_id": req.request_id, "status": "OK"}
        elif outcome == "error":
            detail = [{"loc": ["body", "source_face_url"], "msg": "No face found in the source image",
                       "type": "no_face_detected"}]
            req.result_status, req.result_body = 422, {"detail": detail}
            body = {"error": "Invalid status code: 422", "gateway_request_id": req.request_id,
                    "payload": {"detail": detail}, "request_id": req.request_id, "status": "ERROR"}
        else:
            raise ValueError(outcome)
        raw = json.dumps(body, sort_keys=True).encode()
        return Delivery(url=req.webhook_url or "", headers=self.sign(raw, req.request_id, timestamp=timestamp), body=raw)

    def file_bytes(self, req: Req) -> bytes:
        return next(v for k, v in self.files.items() if k.startswith(req.request_id))

    # -- HTTP ---------------------------------------------------------------------------------------
    def _build(self) -> FastAPI:
        app = FastAPI()

        def authorized(request: Request) -> bool:
            return request.headers.get("authorization") == f"Key {KEY}"

        async def fault_answer(route: str) -> Response | None:
            fault = self._take(route)
            if fault is None:
                return None
            if fault.delay:
                await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return JSONResponse(fault.body or {"detail": f"injected {fault.status}"}, status_code=fault.status,
                                    headers=fault.headers)
            return None

        @app.get("/.well-known/jwks.json")
        def jwks() -> dict[str, Any]:
            self.jwks_gets += 1
            return self.jwks()

        @app.get("/redirect")
        def redirect(to: str) -> Response:
            return RedirectResponse(to, status_code=302)

        @app.get("/files/{name}")
        async def files(name: str) -> Response:
            self.file_gets.append(name)
            answer = await fault_answer("files")
            if answer is not None:
                return answer
            data = self.files.get(name)
            if data is None:
                return JSONResponse({"detail": "not found"}, status_code=404)
            if self.break_files > 0:
                self.break_files -= 1
                self.faults_served += 1

                def broken() -> Any:
                    yield data[: len(data) // 2]
                    raise RuntimeError("connection dropped mid-stream (injected)")

                return StreamingResponse(broken(), headers={"content-length": str(len(data))})
            return Response(data, media_type="application/octet-stream")

        @app.post("/{owner}/{alias}/{endpoint}")
        async def submit(owner: str, alias: str, endpoint: str, request: Request) -> Response:
            webhook = request.query_params.get("fal_webhook")
            job_id = dict(parse_qsl(urlsplit(webhook).query)).get("job_id") if webhook else None
            fault = self._take("submit")
            if fault is not None and fault.status is not None and not fault.delay:
                with self._lock:
                    self.posts.append((job_id, False))  # refused: nothing enqueued
                return JSONResponse(fault.body or {"detail": f"injected {fault.status}"}, status_code=fault.status,
                                    headers=fault.headers)
            if not authorized(request):
                with self._lock:
                    self.posts.append((job_id, False))
                return JSONResponse({"detail": "No user found for Key ID and Secret"}, status_code=401)
            rid = str(uuid.uuid4())
            req = Req(request_id=rid, job_id=job_id, endpoint=endpoint, input=await request.json(), webhook_url=webhook)
            with self._lock:
                self.requests[rid] = req
                self.posts.append((job_id, True))
            if self.on_submit is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.on_submit, req)
            if fault is not None:  # enqueued, then slow or failing: the caller cannot know it exists
                if fault.delay:
                    await asyncio.sleep(fault.delay)
                if fault.status is not None:
                    return JSONResponse({"detail": "injected after enqueue"}, status_code=fault.status)
            base = f"{self.base_url}/{owner}/{alias}/requests/{rid}"
            return JSONResponse({"request_id": rid, "response_url": base, "status_url": f"{base}/status",
                                 "cancel_url": f"{base}/cancel", "queue_position": 0, "status": "IN_QUEUE"},
                                headers={"x-fal-request-id": rid})

        @app.get("/{owner}/{alias}/requests/{rid}/status")
        async def status(owner: str, alias: str, rid: str, request: Request) -> Response:
            answer = await fault_answer("status")
            if answer is not None:
                return answer
            req = self.requests.get(rid)
            if req is None or not authorized(request):
                return JSONResponse({"detail": "not found"}, status_code=404)
            body: dict[str, Any] = {"status": req.state, "request_id": rid, "logs": None}
            if req.state == "IN_QUEUE":
                body["queue_position"] = 0
            if req.state == "COMPLETED" and req.result_status >= 400:
                body.update(error="Invalid status code: 422", error_type="validation_error")
            return JSONResponse(body, status_code=200 if req.state == "COMPLETED" else 202)

        @app.get("/{owner}/{alias}/requests/{rid}")
        async def result(owner: str, alias: str, rid: str, request: Request) -> Response:
            answer = await fault_answer("result")
            if answer is not None:
                return answer
            req = self.requests.get(rid)
            if req is None or not authorized(request) or req.result_body is None:
                return JSONResponse({"detail": "not found"}, status_code=404)
            return JSONResponse(req.result_body, status_code=req.result_status, headers={"x-fal-request-id": rid})

        @app.put("/{owner}/{alias}/requests/{rid}/cancel")
        async def cancel(owner: str, alias: str, rid: str, request: Request) -> Response:
            answer = await fault_answer("cancel")
            if answer is not None:
                return answer
            req = self.requests.get(rid)
            if req is None or not authorized(request):
                return JSONResponse({"detail": "not found"}, status_code=404)
            if req.state == "COMPLETED":
                return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
            req.cancelled = True
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

        return app
