"""The engine server over real HTTP (uvicorn on a loopback port): fal's queue protocol (§7), auth, webhooks with
Ed25519 signatures verified against the served JWKS, retries, queue position, cancel, SSE status, files route,
OpenAPI, and every bad input of issue 3 point 7 answered with a clear 422 while the server keeps serving.

The swap is a simple frame function here (a red square; a uniform source has "no face"), so these tests exercise
the plumbing; tests/engine/test_server_engine.py runs the same routes with the real engine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from faceswap_engine import sample_media
from faceswap_engine.errors import NoFaceInSource
from faceswap_engine.server import EngineProcessor, ServerConfig, create_app
from faceswap_engine.server.processor import Source
from faceswap_engine.server.testing import HttpFixture, ServerThread, make_clip

KEY = "test-key:test-secret"
APP = "half-moon-ai/ai-face-swap"


class DrawSwapper:
    """Stand-in swap: draws a red square; a uniform source has no face; a uniform target gets a warning.

    ``gate`` (set by default) blocks every frame/image while cleared, so tests can hold a worker busy.
    """

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.gate.set()

    @staticmethod
    def _check(sources: Sequence[Source]) -> None:
        for s in sources:
            if float(s.image_bgr.std()) < 1.0:
                raise NoFaceInSource(f"no face found in the source image ({s.field})", loc=[s.field])

    def _draw(self, frame: np.ndarray) -> np.ndarray:
        self.gate.wait(30)
        out = frame.copy()
        cv2.rectangle(out, (2, 2), (21, 21), (0, 0, 255), -1)
        return out

    def swap_image(self, sources: Sequence[Source], target: np.ndarray, occlusion: bool) -> tuple[np.ndarray, list[str]]:
        self._check(sources)
        if target.shape[:2] == (13, 13):
            raise RuntimeError("simulated engine crash")
        if float(target.std()) < 1.0:
            return target.copy(), ["No face was detected in the target image; it is returned unchanged."]
        return self._draw(target), []

    def video(self, sources: Sequence[Source], occlusion: bool) -> Any:
        self._check(sources)
        draw = self._draw

        class _Video:
            def __call__(self, frame: np.ndarray) -> np.ndarray:
                return draw(frame)

            def warnings(self) -> list[str]:
                return []

        return _Video()


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def png_uri(img: np.ndarray) -> str:
    return data_uri(cv2.imencode(".png", img)[1].tobytes(), "image/png")


FACE = png_uri(cv2.imread(str(sample_media.astronaut())))
TARGET_JPEG = data_uri(sample_media.grace_hopper().read_bytes(), "image/jpeg")
BLANK = png_uri(np.full((64, 64, 3), 128, np.uint8))


@pytest.fixture(scope="module")
def swapper() -> DrawSwapper:
    return DrawSwapper()


@pytest.fixture(scope="module")
def media_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpFixture]:
    """Inputs served over real HTTP: a clip, a truncated video, a GIF, an enormous PNG."""
    from tests.engine.test_media_fetch import huge_png

    tmp = tmp_path_factory.mktemp("media")
    clip = make_clip(tmp / "c30.mp4", frames=15, fps=30).read_bytes()
    mega = sample_media.megamind_video().read_bytes()
    files = {
        "/clip30.mp4": clip,
        "/truncated.avi": mega[: len(mega) // 2],
        "/anim": b"GIF89a" + b"\x00" * 200,
        "/huge.png": huge_png(),
        "/face.png": cv2.imencode(".png", cv2.imread(str(sample_media.astronaut())))[1].tobytes(),
        "/media/12345": cv2.imencode(".png", cv2.imread(str(sample_media.astronaut())))[1].tobytes(),
    }
    with HttpFixture(files) as host:
        yield host


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, swapper: DrawSwapper) -> Iterator[ServerThread]:
    config = ServerConfig(
        data_dir=tmp_path_factory.mktemp("engine"), keys=[KEY], workers=1,
        webhook_backoff_s=0.05, webhook_max_backoff_s=0.2, fetch_read_timeout_s=1.0,
    )
    app = create_app(config, EngineProcessor(config, swapper=swapper))
    with ServerThread(app) as running:
        yield running


@pytest.fixture()
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}, timeout=30) as client:
        yield client


def submit(http: httpx.Client, endpoint: str, body: Any, webhook: str | None = None) -> dict[str, Any]:
    params = {"fal_webhook": webhook} if webhook else None
    r = http.post(f"/{APP}/{endpoint}", json=body, params=params)
    assert r.status_code == 200, r.text
    assert r.headers["x-fal-request-id"] == r.json()["request_id"]
    return r.json()


def wait_done(http: httpx.Client, sub: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = http.get(sub["status_url"], params={"logs": "1"})
        if r.status_code == 200:
            assert r.json()["status"] == "COMPLETED"
            return r.json()
        assert r.status_code == 202 and r.json()["status"] in ("IN_QUEUE", "IN_PROGRESS")
        assert time.monotonic() < deadline, "request did not complete"
        time.sleep(0.05)


def run(http: httpx.Client, endpoint: str, body: Any) -> httpx.Response:
    sub = submit(http, endpoint, body)
    wait_done(http, sub)
    return http.get(sub["response_url"])


def assert_422(response: httpx.Response, field: str, type_: str) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    entry = detail[0]
    assert entry["loc"] == ["body", field], entry
    assert entry["type"] == type_, entry
    assert entry["msg"]
    return entry


# --- happy paths ------------------------------------------------------------------------------------------

def test_image_request_lifecycle(http: httpx.Client, server: ServerThread) -> None:
    sub = submit(http, "faceswapimage", {"source_face_url": FACE, "target_image_url": TARGET_JPEG})
    rid = sub["request_id"]
    assert sub["status"] == "IN_QUEUE" and isinstance(sub["queue_position"], int)
    root = f"{server.url}/{APP}/requests/{rid}"  # sub-path-less, as fal's clients build them
    assert (sub["response_url"], sub["status_url"], sub["cancel_url"]) == (root, f"{root}/status", f"{root}/cancel")
    done = wait_done(http, sub)
    assert done["request_id"] == rid and "error" not in done
    assert isinstance(done["metrics"]["inference_time"], float)
    assert any("Loaded target_image_url" in line["message"] for line in done["logs"])
    assert set(done["logs"][0]) == {"message", "level", "source", "timestamp"}
    for flag, has_logs in (("0", False), ("false", False), ("true", True), ("1", True)):
        r = http.get(sub["status_url"], params={"logs": flag})
        assert r.status_code == 200 and r.headers["x-fal-request-id"] == rid
        assert (r.json()["logs"] is not None) is has_logs
    assert http.get(sub["status_url"]).json()["logs"] is None
    # the with-sub-path form of fal's per-endpoint OpenAPI works too
    assert http.get(f"/{APP}/faceswapimage/requests/{rid}/status").status_code == 200
    result = http.get(sub["response_url"])
    assert result.status_code == 200 and result.headers["x-fal-request-id"] == rid
    out = result.json()
    image = out["image"]
    assert image["content_type"] == "image/jpeg" and image["file_name"].endswith(".jpg")
    assert (image["width"], image["height"]) == (512, 600)
    assert out["warning"] is None and out["processing_time_ms"] >= 0
    assert http.get(f"/{APP}/faceswapimage/requests/{rid}").json() == out
    file = httpx.get(image["url"])
    assert file.status_code == 200 and int(file.headers["content-length"]) == image["file_size"] == len(file.content)
    assert file.headers["content-type"] == "image/jpeg"
    pixels = cv2.imdecode(np.frombuffer(file.content, np.uint8), cv2.IMREAD_COLOR)
    assert pixels[10, 10, 2] > 200 and pixels[10, 10, 0] < 80
    r = http.put(sub["cancel_url"])
    assert r.status_code == 400 and r.json() == {"status": "ALREADY_COMPLETED"}


def test_multi_image_and_png_family(http: httpx.Client) -> None:
    body = {"source_face_url_1": FACE, "source_gender_1": "female", "source_face_url_2": FACE,
            "source_gender_2": "male", "target_image_url": png_uri(cv2.imread(str(sample_media.grace_hopper())))}
    out = run(http, "faceswapimagemulti", body).json()
    assert out["image"]["content_type"] == "image/png" and out["image"]["file_name"].endswith(".png")


def test_video_request_with_fps_warning_and_progress_logs(http: httpx.Client, media_host: HttpFixture) -> None:
    sub = submit(http, "faceswapvideo", {"source_face_url": f"{media_host.url}/face.png",
                                         "target_video_url": f"{media_host.url}/clip30.mp4"})
    done = wait_done(http, sub)
    assert any(line["message"].startswith("Processed 12/12 frames") for line in done["logs"])
    out = http.get(sub["response_url"]).json()
    assert out["warning"] == "FPS reduced from 30 to 25"
    assert out["video"]["content_type"] == "video/mp4" and out["video"]["file_name"] == "faceswap.mp4"
    video = httpx.get(out["video"]["url"])
    assert video.status_code == 200 and len(video.content) == out["video"]["file_size"]
    assert int(video.headers["content-length"]) == out["video"]["file_size"]


def test_status_stream(http: httpx.Client) -> None:
    sub = submit(http, "faceswapimage", {"source_face_url": FACE, "target_image_url": TARGET_JPEG})
    events = []
    with http.stream("GET", f"{sub['status_url']}/stream", params={"logs": "0"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert events[-1]["status"] == "COMPLETED" and events[-1]["logs"] is None


# --- auth and routing -------------------------------------------------------------------------------------

def test_auth(server: ServerThread) -> None:
    url = f"{server.url}/{APP}/faceswapimage"
    cases = {
        None: "Missing Authorization header",
        "Key nocolon": "Invalid Key Authorization header format",
        "Bearer test-key:test-secret": "Invalid Key Authorization header format",
        "Key test-key:wrong": "No user found for Key ID and Secret",
        "Key other:test-secret": "No user found for Key ID and Secret",
    }
    for header, message in cases.items():
        headers = {"Authorization": header} if header else {}
        r = httpx.post(url, json={}, headers=headers)
        assert r.status_code == 401 and message in r.json()["detail"], (header, r.text)
        r = httpx.get(f"{server.url}/{APP}/requests/x/status", headers=headers)
        assert r.status_code == 401
    assert httpx.get(f"{server.url}/.well-known/jwks.json").status_code == 200  # public


def test_unknown_things_are_404(http: httpx.Client) -> None:
    assert http.post(f"/{APP}/faceswapnothing", json={}).status_code == 404
    assert http.post("/other/app/faceswapimage", json={}).status_code == 404
    r = http.get(f"/{APP}/requests/00000000-0000-0000-0000-000000000000/status")
    assert r.status_code == 404 and "detail" in r.json()
    assert http.get("/files/nope/faceswap.png").status_code == 404
    assert http.get("/files/..%2F..%2Fetc/passwd").status_code == 404


def test_openapi_and_docs(http: httpx.Client) -> None:
    spec = http.get("/openapi.json").json()
    assert f"/{{owner}}/{{alias}}/requests/{{request_id}}/status" in spec["paths"]
    assert {"FaceSwapInputVideo", "FaceSwapInputImageMulti", "VideoOutput"} <= set(spec["components"]["schemas"])
    assert http.get("/docs").status_code == 200


def test_jwks_is_stable_across_restarts(tmp_path: Path) -> None:
    first = create_app(ServerConfig(data_dir=tmp_path), EngineProcessor(ServerConfig(data_dir=tmp_path), DrawSwapper()))
    second = create_app(ServerConfig(data_dir=tmp_path), EngineProcessor(ServerConfig(data_dir=tmp_path), DrawSwapper()))
    assert first.state.signer.jwks() == second.state.signer.jwks()
    key = first.state.signer.jwks()["keys"][0]
    assert key["kty"] == "OKP" and key["crv"] == "Ed25519" and len(base64.urlsafe_b64decode(key["x"] + "=")) == 32
    assert oct((tmp_path / "webhook-signing-key.pem").stat().st_mode & 0o777) == "0o600"


# --- queue position and cancel ----------------------------------------------------------------------------

def test_queue_position_and_cancel(http: httpx.Client, swapper: DrawSwapper) -> None:
    body = {"source_face_url": FACE, "target_image_url": TARGET_JPEG}
    swapper.gate.clear()
    try:
        running = submit(http, "faceswapimage", body)
        deadline = time.monotonic() + 10
        while http.get(running["status_url"]).json()["status"] != "IN_PROGRESS":
            assert time.monotonic() < deadline
            time.sleep(0.02)
        second = submit(http, "faceswapimage", body)
        third = submit(http, "faceswapimage", body)
        assert (second["queue_position"], third["queue_position"]) == (0, 1)
        r = http.get(third["status_url"])
        assert r.status_code == 202 and r.json()["status"] == "IN_QUEUE" and r.json()["queue_position"] == 1
        r = http.get(running["status_url"], params={"logs": 1})
        assert r.status_code == 202 and r.json()["status"] == "IN_PROGRESS" and isinstance(r.json()["logs"], list)
        r = http.put(second["cancel_url"])
        assert r.status_code == 202 and r.json() == {"status": "CANCELLATION_REQUESTED"}
        assert http.get(third["status_url"]).json()["queue_position"] == 0
        r = http.get(second["status_url"])
        assert r.status_code == 200 and r.json()["error_type"] == "client_cancelled"
        assert http.get(second["response_url"]).status_code == 499
        r = http.put(running["cancel_url"])  # running: the job sees the signal and stops
        assert r.status_code == 202
    finally:
        swapper.gate.set()
    assert wait_done(http, running)["error_type"] == "client_cancelled"
    assert http.get(running["response_url"]).status_code == 499
    assert http.get(third["response_url"]).status_code == 200 if wait_done(http, third) else False
    assert http.put(third["cancel_url"]).status_code == 400


def test_max_queue_length(http: httpx.Client, swapper: DrawSwapper) -> None:
    body = {"source_face_url": FACE, "target_image_url": TARGET_JPEG}
    swapper.gate.clear()
    try:
        first = submit(http, "faceswapimage", body)
        second = submit(http, "faceswapimage", body)
        r = http.post(f"/{APP}/faceswapimage", json=body, params={"fal_max_queue_length": "1"})
        assert r.status_code == 429
    finally:
        swapper.gate.set()
    wait_done(http, first), wait_done(http, second)


# --- webhooks -------------------------------------------------------------------------------------------

def verify(headers: dict[str, str], body: bytes, jwks: dict[str, Any]) -> bool:
    lower = {k.lower(): v for k, v in headers.items()}
    message = "\n".join([
        lower["x-fal-webhook-request-id"], lower["x-fal-webhook-user-id"], lower["x-fal-webhook-timestamp"],
        hashlib.sha256(body).hexdigest(),
    ]).encode()
    for key in jwks["keys"]:
        public = Ed25519PublicKey.from_public_bytes(base64.urlsafe_b64decode(key["x"] + "=" * (-len(key["x"]) % 4)))
        try:
            public.verify(bytes.fromhex(lower["x-fal-webhook-signature"]), message)
            return True
        except Exception:  # noqa: BLE001
            continue
    return False


def wait_posts(receiver: HttpFixture, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.posts) < n:
        assert time.monotonic() < deadline, f"{len(receiver.posts)} webhook posts, expected {n}"
        time.sleep(0.05)


def test_webhook_ok_signed_and_retried(http: httpx.Client) -> None:
    jwks = http.get("/.well-known/jwks.json").json()
    with HttpFixture(fail_first=2) as receiver:
        sub = submit(http, "faceswapimage", {"source_face_url": FACE, "target_image_url": TARGET_JPEG},
                     webhook=f"{receiver.url}/hook?job_id=abc&x=1")
        wait_posts(receiver, 3)
        time.sleep(0.3)
        assert len(receiver.posts) == 3  # two 500s, then delivered once
    for headers, body in receiver.posts:
        assert verify(headers, body, jwks)
        assert abs(int(headers["X-Fal-Webhook-Timestamp"]) - time.time()) < 60
        assert headers["X-Fal-Webhook-User-Id"] == "test-key"
    headers, body = receiver.posts[-1]
    payload = json.loads(body)
    assert body == json.dumps(payload, sort_keys=True).encode()  # sorted keys, Python default separators
    assert list(payload) == ["error", "gateway_request_id", "payload", "request_id", "status"]
    assert payload["status"] == "OK" and payload["error"] is None
    assert payload["request_id"] == sub["request_id"] == headers["X-Fal-Webhook-Request-Id"]
    assert payload["payload"] == http.get(sub["response_url"]).json()
    tampered = body.replace(b'"OK"', b'"ERROR"')
    assert not verify(headers, tampered, jwks)


def test_webhook_error_for_422(http: httpx.Client) -> None:
    jwks = http.get("/.well-known/jwks.json").json()
    with HttpFixture() as receiver:
        submit(http, "faceswapimage", {"source_face_url": BLANK, "target_image_url": TARGET_JPEG},
               webhook=f"{receiver.url}/hook")
        wait_posts(receiver, 1)
    headers, body = receiver.posts[0]
    assert verify(headers, body, jwks)
    payload = json.loads(body)
    assert payload["status"] == "ERROR" and payload["error"] == "Invalid status code: 422"
    assert payload["payload"]["detail"][0]["loc"] == ["body", "source_face_url"]


# --- bad inputs (issue 3 point 7): a clear 422 each, and the server keeps serving ------------------------

def test_bad_inputs_each_get_a_clear_422(http: httpx.Client, media_host: HttpFixture) -> None:
    from tests.engine.test_media_fetch import huge_png

    host = media_host.url
    good = {"source_face_url": FACE, "target_image_url": TARGET_JPEG}
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("faceswapimage", {**good, "source_face_url": BLANK}, "source_face_url", "no_face_in_source"),
        ("faceswapvideo", {"source_face_url": FACE, "target_video_url": f"{host}/truncated.avi"},
         "target_video_url", "corrupt_media"),
        ("faceswapimage", {**good, "target_image_url": f"{host}/anim"}, "target_image_url", "unsupported_format"),
        ("faceswapvideo", {"source_face_url": FACE, "target_video_url": f"{host}/media/12345"},
         "target_video_url", "unsupported_format"),
        ("faceswapimage", {**good, "target_image_url": data_uri(huge_png(), "image/png")},
         "target_image_url", "media_too_large"),
        ("faceswapimage", {**good, "target_image_url": f"{host}/huge.png"}, "target_image_url", "media_too_large"),
        ("faceswapimage", {**good, "source_face_url": "data:image/png,notbase64"}, "source_face_url",
         "invalid_data_uri"),
        ("faceswapimage", {**good, "source_face_url": "data:image/png;base64,***"}, "source_face_url",
         "data_uri_base64"),
        ("faceswapimage", {**good, "target_image_url": f"{host}/missing.png"}, "target_image_url", "fetch_failed"),
        ("faceswapimage", {**good, "target_image_url": "http://127.0.0.1:1/x.png"}, "target_image_url",
         "fetch_failed"),
        ("faceswapimage", {"source_face_url": FACE}, "target_image_url", "missing"),
        ("faceswapimage", {**good, "target_image_url": "https://example.com/a.gif"}, "target_image_url",
         "url_extension"),
        ("faceswapimagemulti", {"source_face_url_1": FACE, "source_gender_1": "other", "target_image_url": TARGET_JPEG},
         "source_gender_1", "enum"),
        ("faceswapimagemulti", {"source_face_url_1": FACE, "source_gender_1": "male", "source_face_url_2": FACE,
                                "target_image_url": TARGET_JPEG}, "source_gender_2", "missing"),
    ]
    for endpoint, body, field, type_ in cases:
        entry = assert_422(run(http, endpoint, body), field, type_)
        assert entry["msg"], entry
        assert run(http, "faceswapimage", good).status_code == 200, f"server broken after {type_}"


def test_url_that_never_answers(http: httpx.Client) -> None:
    with HttpFixture(hang=True) as slow:
        entry = assert_422(run(http, "faceswapimage", {"source_face_url": FACE,
                                                      "target_image_url": f"{slow.url}/never.png"}),
                           "target_image_url", "fetch_failed")
    assert "timed out" in entry["msg"]
    assert run(http, "faceswapimage", {"source_face_url": FACE, "target_image_url": TARGET_JPEG}).status_code == 200


def test_no_face_in_target_returns_input_with_warning(http: httpx.Client) -> None:
    blank = np.full((40, 60, 3), 77, np.uint8)
    out = run(http, "faceswapimage", {"source_face_url": FACE, "target_image_url": png_uri(blank)}).json()
    assert "No face" in out["warning"]
    got = cv2.imdecode(np.frombuffer(httpx.get(out["image"]["url"]).content, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(got, blank)


def test_body_not_json_is_422_at_result(http: httpx.Client) -> None:
    r = http.post(f"/{APP}/faceswapimage", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 200
    sub = r.json()
    wait_done(http, sub)
    response = http.get(sub["response_url"])
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "json_invalid"


def test_engine_crash_is_500_and_server_keeps_serving(http: httpx.Client) -> None:
    sub = submit(http, "faceswapimage", {"source_face_url": FACE, "target_image_url": png_uri(np.zeros((13, 13, 3), np.uint8))})
    status = wait_done(http, sub)
    assert status["error_type"] == "runner_server_error"
    r = http.get(sub["response_url"])
    assert r.status_code == 500 and r.headers["X-Fal-Error-Type"] == "runner_server_error"
    assert run(http, "faceswapimage", {"source_face_url": FACE, "target_image_url": TARGET_JPEG}).status_code == 200


def test_oversized_body_is_413(tmp_path: Path) -> None:
    config = ServerConfig(data_dir=tmp_path, keys=[KEY], max_request_bytes=1000)
    with ServerThread(create_app(config, EngineProcessor(config, swapper=DrawSwapper()))) as small:
        r = httpx.post(f"{small.url}/{APP}/faceswapimage", json={"source_face_url": FACE},
                       headers={"Authorization": f"Key {KEY}"})
    assert r.status_code == 413 and "detail" in r.json()
