"""The whole flow against the project's own engine server (engine/faceswap_engine/server) with a cheap swapper.

Here nothing is driven by hand: the engine fetches the presigned inputs from the moto server, decodes and
re-encodes real media, publishes the result, and POSTs its own Ed25519-signed webhook (with retries) to a
loopback gateway that turns the request into a Function URL event (events/webhook_ok.json as the frame) for
the real webhook handler. The swap itself is a colour inversion so this stays fast.
"""

from __future__ import annotations

import http.server
import io
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import cv2
import numpy as np
import pytest
from pipeline_harness import NAMES, FakeContext, Pipeline, Stack, _load_handler, load_event
from fal_protocol_server import KEY



class InvertSwapper:
    """The engine's Swapper protocol with the cheapest possible 'swap'."""

    def swap_image(self, sources: Sequence[Any], target_bgr: np.ndarray, occlusion: bool) -> tuple[np.ndarray, list[str]]:
        return 255 - target_bgr, []

    def video(self, sources: Sequence[Any], occlusion: bool) -> Any:
        class _Video:
            def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
                return 255 - frame_bgr

            def warnings(self) -> list[str]:
                return []

        return _Video()


class Gateway:
    """Loopback HTTP → Function URL event → WebhookFunction handler (what AWS does in front of the function)."""

    def __init__(self, handler_module: Any) -> None:
        gateway = self
        self.answers: list[int] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                event = load_event("webhook_ok.json")
                event["headers"] = {k.lower(): v for k, v in self.headers.items()}
                query = urlsplit(self.path).query
                event["rawQueryString"] = query
                event["queryStringParameters"] = dict(parse_qsl(query)) or None
                event["body"] = body.decode()
                answer = handler_module.lambda_handler(event, FakeContext())
                gateway.answers.append(answer["statusCode"])
                data = answer["body"].encode()
                self.send_response(answer["statusCode"])
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="module")
def engine_stack(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The same moto server, the engine server as provider, handlers loaded with the engine's URLs."""
    from faceswap_engine.server import EngineProcessor, ServerConfig, create_app
    from faceswap_engine.server.testing import ServerThread, free_port

    port = free_port()
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("engine"), port=port, keys=[KEY], webhook_backoff_s=0.2)
    engine = ServerThread(create_app(config, EngineProcessor(config, swapper=InvertSwapper())), port=port).start()
    env = {
        "AWS_ENDPOINT_URL": stack.endpoint, "MEDIA_BUCKET": NAMES.bucket, "JOBS_TABLE": NAMES.jobs_table,
        "IDEMPOTENCY_TABLE": NAMES.idempotency_table, "PROVIDER_BASE_URL": engine.url,
        "FAL_KEY_SECRET_ARN": stack.secret_arn, "JWKS_URL": f"{engine.url}/.well-known/jwks.json",
        "ALLOWED_RESULT_HOSTS": f"*.fal.media,127.0.0.1:{port}",
        "RESULT_COPY_QUEUE_URL": f"{stack.endpoint}/123456789012/{NAMES.result_copy_queue}",
    }
    saved = {k: os.environ.get(k) for k in [*env, "WEBHOOK_URL"]}
    os.environ.update(env)
    try:
        webhook = _load_handler("webhook")
        gateway = Gateway(webhook)
        os.environ["WEBHOOK_URL"] = gateway.url
        submit, store = _load_handler("submit_job"), _load_handler("store_result")
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    engine_stack = Stack(stack.endpoint, stack.provider, submit, webhook, store, stack.secret_arn)
    engine_stack.gateway = gateway  # type: ignore[attr-defined]
    yield engine_stack
    gateway.stop()
    engine.stop()


@pytest.fixture
def engine_pipeline(pipeline: Pipeline, engine_stack: Stack) -> Pipeline:
    engine_stack.gateway.answers.clear()  # type: ignore[attr-defined]
    pipeline.stack = engine_stack
    return pipeline


def _png(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    ok, data = cv2.imencode(".png", rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    assert ok
    return data.tobytes()


def _wait_status(p: Pipeline, job_id: str, wanted: set[str], timeout: float = 90) -> str:
    """Until the engine's webhook has been answered (the hand-off is queued by then) and the job is in `wanted`."""
    gateway = p.stack.gateway  # type: ignore[attr-defined]
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = p.job(job_id).status.value
        if status in wanted and gateway.answers:
            return status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} stayed {p.job(job_id).status.value}")


def test_video_through_the_engine_server(engine_pipeline: Pipeline, tmp_path: Path) -> None:
    from faceswap_engine.server.testing import make_clip

    import av

    p = engine_pipeline
    clip = make_clip(tmp_path / "clip.mp4", frames=8)
    p.put("faces/alice.png", _png(1))
    p.put("inbox/alice/party.mp4", clip.read_bytes())
    before = p.inputs_snapshot()
    outcome = p.submit(p.s3_event("s3_put_inbox_video.json"))[0]
    assert outcome["outcome"] == "submitted", outcome
    assert _wait_status(p, outcome["job_id"], {"STORING", "FAILED"}) == "STORING", p.job(outcome["job_id"]).error
    assert p.run_store() == []
    job = p.job(outcome["job_id"])
    assert job.status.value == "COMPLETED", job.error
    assert job.output is not None and job.output.content_type == "video/mp4"
    assert job.processing_time_ms is not None
    with av.open(io.BytesIO(p.get(job.output.key))) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8
    assert p.inputs_snapshot() == before


def test_image_through_the_engine_server(engine_pipeline: Pipeline) -> None:
    p = engine_pipeline
    target = _png(2, (80, 60))
    p.put("faces/alice.png", _png(1))
    p.put("inbox/alice/portrait.jpg", target)  # a PNG under a .jpg name: decoders sniff the bytes
    before = p.inputs_snapshot()
    outcome = p.submit(p.s3_event("s3_put_inbox_image.json"))[0]
    assert _wait_status(p, outcome["job_id"], {"STORING", "FAILED"}) == "STORING", p.job(outcome["job_id"]).error
    assert p.run_store() == []
    job = p.job(outcome["job_id"])
    assert job.status.value == "COMPLETED", job.error
    decoded = cv2.imdecode(np.frombuffer(p.get(job.output.key), np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imdecode(np.frombuffer(target, np.uint8), cv2.IMREAD_COLOR)
    assert decoded.shape == original.shape
    assert np.abs(decoded.astype(int) - (255 - original.astype(int))).mean() < 8  # the inversion came back
    assert p.inputs_snapshot() == before


def test_engine_validation_error_arrives_as_an_error_webhook(engine_pipeline: Pipeline) -> None:
    """A target the engine cannot decode: its 422 arrives as an ERROR webhook and the job ends FAILED."""
    p = engine_pipeline
    p.put("faces/alice.png", _png(1))
    p.put("inbox/alice/portrait.jpg", b"not an image at all")
    outcome = p.submit(p.s3_event("s3_put_inbox_image.json"))[0]
    assert _wait_status(p, outcome["job_id"], {"FAILED", "STORING"}) == "FAILED"
    error = p.job(outcome["job_id"]).error
    assert error is not None and error.code == "PROVIDER_FAILED" and "422" in error.message
    assert p.keys("outputs/") == []
