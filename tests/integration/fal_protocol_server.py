"""A small server speaking fal's queue protocol on loopback, for the pipeline's integration tests.

Why not a mock transport: the pipeline's real httpx clients must talk to a real socket, the provider must
really fetch the presigned S3 URLs (from a moto server), and webhooks must carry real Ed25519 signatures
verified against a real JWKS route. Processing is explicit (`complete`) so each test decides the outcome
(OK, ERROR, no payload, a result URL on a foreign host, a download that breaks) and when it happens.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from faceswap_engine.server.testing import ServerThread
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

KEY = "test-key-id:test-key-secret"
USER_ID = "user_integration"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Submission:
    request_id: str
    endpoint: str
    input: dict[str, Any]
    webhook_url: str | None
    fetched: dict[str, bytes] = field(default_factory=dict)
    state: str = "IN_QUEUE"
    result_status: int = 200
    result_body: dict[str, Any] | None = None


@dataclass
class Delivery:
    """A signed webhook, ready to be turned into a Function URL event."""

    url: str
    headers: dict[str, str]
    body: bytes


class FalProtocolServer:
    """Queue routes, /files, JWKS; knobs: `submit_reply` (status, body), `break_downloads` (count)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.host = f"127.0.0.1:{self.port}"
        self.signing_key = Ed25519PrivateKey.generate()
        self.submissions: dict[str, Submission] = {}
        self.files: dict[str, bytes] = {}
        self.file_gets: list[str] = []
        self.submit_reply: tuple[int, dict[str, Any]] | None = None
        self.break_downloads = 0
        self._lock = threading.Lock()
        self.app = self._build()
        self._server: ServerThread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FalProtocolServer:
        self._server = ServerThread(self.app, port=self.port).start()  # real HTTP on loopback
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def reset(self) -> None:
        with self._lock:
            self.submissions.clear()
            self.files.clear()
            self.file_gets.clear()
            self.submit_reply = None
            self.break_downloads = 0

    # -- signing --------------------------------------------------------------------------------
    def jwks(self) -> dict[str, Any]:
        raw = self.signing_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": x, "kid": "integration"}]}

    def sign(self, body: bytes, request_id: str, timestamp: int | None = None,
             key: Ed25519PrivateKey | None = None) -> dict[str, str]:
        """The four X-Fal-Webhook-* headers for `body` (lower-case, as a Function URL delivers them)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        message = f"{request_id}\n{USER_ID}\n{ts}\n{hashlib.sha256(body).hexdigest()}".encode()
        signature = (key or self.signing_key).sign(message).hex()
        return {
            "x-fal-webhook-request-id": request_id,
            "x-fal-webhook-user-id": USER_ID,
            "x-fal-webhook-timestamp": ts,
            "x-fal-webhook-signature": signature,
        }

    # -- processing (driven by the test) --------------------------------------------------------
    def only_submission(self) -> Submission:
        assert len(self.submissions) == 1, f"expected one submission, got {len(self.submissions)}"
        return next(iter(self.submissions.values()))

    def fetch_inputs(self, sub: Submission) -> None:
        """GET every URL input the way a provider does (presigned S3 URLs on the moto server)."""
        for name, value in sub.input.items():
            if isinstance(value, str) and value.startswith("http"):
                response = httpx.get(value, timeout=10)
                response.raise_for_status()
                sub.fetched[name] = response.content

    def complete(
        self,
        sub: Submission,
        *,
        outcome: str = "ok",
        warning: str | None = None,
        result_url: str | None = None,
        processing_time_ms: int = 1234,
    ) -> Delivery:
        """Run the request: fetch inputs, publish an output file, build the signed webhook."""
        self.fetch_inputs(sub)
        video = sub.endpoint.startswith("faceswapvideo")
        target = sub.fetched.get("target_video_url" if video else "target_image_url", b"")
        ext, ctype = ("mp4", "video/mp4") if video else ("png", "image/png")
        name = f"{sub.request_id}/swapped.{ext}"
        data = b"SWAPPED:" + hashlib.sha256(b"".join(sorted(sub.fetched.values()))).digest() + target
        self.files[name] = data
        file = {
            "url": result_url or f"{self.base_url}/files/{name}",
            "content_type": ctype,
            "file_name": f"swapped.{ext}",
            "file_size": len(data),
        }
        output: dict[str, Any] = {"video" if video else "image": file, "processing_time_ms": processing_time_ms}
        if warning:
            output["warning"] = warning
        sub.state = "COMPLETED"
        if outcome == "ok":
            sub.result_status, sub.result_body = 200, output
            body = {"error": None, "gateway_request_id": sub.request_id, "payload": output,
                    "request_id": sub.request_id, "status": "OK"}
        elif outcome == "no_payload":
            sub.result_status = 422
            sub.result_body = {"detail": [{"loc": ["body", "source_face_url"], "msg": "No face found in the source image",
                                           "type": "no_face_detected"}]}
            body = {"error": None, "gateway_request_id": sub.request_id, "payload": None,
                    "payload_error": "Response payload is not JSON serializable.", "request_id": sub.request_id,
                    "status": "OK"}
        elif outcome == "error":
            detail = [{"loc": ["body", "source_face_url"], "msg": "No face found in the source image",
                       "type": "no_face_detected"}]
            sub.result_status, sub.result_body = 422, {"detail": detail}
            body = {"error": "Invalid status code: 422", "gateway_request_id": sub.request_id,
                    "payload": {"detail": detail}, "request_id": sub.request_id, "status": "ERROR"}
        else:
            raise ValueError(outcome)
        raw = json.dumps(body, sort_keys=True).encode()  # fal's own serialization: sorted keys, default separators
        return Delivery(url=sub.webhook_url or "", headers=self.sign(raw, sub.request_id), body=raw)

    # -- HTTP -------------------------------------------------------------------------------------
    def _build(self) -> FastAPI:
        app = FastAPI()

        def authorized(request: Request) -> bool:
            return request.headers.get("authorization") == f"Key {KEY}"

        @app.get("/.well-known/jwks.json")
        def jwks() -> dict[str, Any]:
            return self.jwks()

        @app.get("/files/{rid}/{name}")
        def files(rid: str, name: str) -> Response:
            key = f"{rid}/{name}"
            self.file_gets.append(key)
            data = self.files.get(key)
            if data is None:
                return JSONResponse({"detail": "not found"}, status_code=404)
            if self.break_downloads > 0:
                self.break_downloads -= 1

                def broken() -> Any:
                    yield data[: len(data) // 2]
                    raise RuntimeError("connection dropped mid-stream (injected)")

                return StreamingResponse(broken(), headers={"content-length": str(len(data))}, media_type="video/mp4")
            return Response(data, media_type="application/octet-stream")

        @app.post("/{owner}/{alias}/{endpoint}")
        async def submit(owner: str, alias: str, endpoint: str, request: Request) -> Response:
            if not authorized(request):
                return JSONResponse({"detail": "No user found for Key ID and Secret"}, status_code=401)
            if self.submit_reply is not None:
                status, body = self.submit_reply
                return JSONResponse(body, status_code=status)
            rid = str(uuid.uuid4())
            with self._lock:
                self.submissions[rid] = Submission(
                    request_id=rid, endpoint=endpoint, input=await request.json(),
                    webhook_url=request.query_params.get("fal_webhook"),
                )
            base = f"{self.base_url}/{owner}/{alias}/requests/{rid}"
            return JSONResponse({"request_id": rid, "response_url": base, "status_url": f"{base}/status",
                                 "cancel_url": f"{base}/cancel", "queue_position": 0, "status": "IN_QUEUE"},
                                headers={"x-fal-request-id": rid})

        @app.get("/{owner}/{alias}/requests/{rid}/status")
        def status(owner: str, alias: str, rid: str, request: Request) -> Response:
            sub = self.submissions.get(rid)
            if sub is None or not authorized(request):
                return JSONResponse({"detail": "not found"}, status_code=404)
            body: dict[str, Any] = {"status": sub.state, "request_id": rid, "logs": None}
            if sub.state == "IN_QUEUE":
                body["queue_position"] = 0
            return JSONResponse(body, status_code=200 if sub.state == "COMPLETED" else 202)

        @app.get("/{owner}/{alias}/requests/{rid}")
        def result(owner: str, alias: str, rid: str, request: Request) -> Response:
            sub = self.submissions.get(rid)
            if sub is None or not authorized(request) or sub.result_body is None:
                return JSONResponse({"detail": "not found"}, status_code=404)
            return JSONResponse(sub.result_body, status_code=sub.result_status, headers={"x-fal-request-id": rid})

        @app.put("/{owner}/{alias}/requests/{rid}/cancel")
        def cancel(owner: str, alias: str, rid: str) -> Response:
            sub = self.submissions.get(rid)
            if sub is None:
                return JSONResponse({"detail": "not found"}, status_code=404)
            if sub.state == "COMPLETED":
                return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
            return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)

        return app
