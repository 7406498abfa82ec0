"""The fal queue client: URLs, auth, submit never retried, status/result/cancel retried with backoff."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from faceswap_common.api_models import Endpoint, FaceSwapInputVideo
from faceswap_common.provider import FalQueueClient, ProviderError, RetryPolicy

BASE = "https://queue.example.test"
APP = "half-moon-ai/ai-face-swap"
KEY = "key-id:key-secret"
HOOK = "https://hook.example.test/?job_id=abc&x=1"
INPUT = FaceSwapInputVideo(source_face_url="https://h/f.jpg", target_video_url="https://h/v.mp4")

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport handler that answers from a script and records every request."""

    def __init__(self, *answers: httpx.Response | Exception | Handler) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer) and not isinstance(answer, httpx.Response):
            return answer(request)
        return answer


def make_client(recorder: Recorder, attempts: int = 4) -> tuple[FalQueueClient, list[float]]:
    sleeps: list[float] = []
    client = FalQueueClient(
        BASE, APP, KEY, http=httpx.Client(transport=httpx.MockTransport(recorder)),
        retry=RetryPolicy(max_attempts=attempts, base_delay=0.1, max_delay=1.0), sleep=sleeps.append, rand=lambda: 0.5,
    )
    return client, sleeps


SUBMITTED = {
    "request_id": "req-1",
    "response_url": f"{BASE}/{APP}/requests/req-1",
    "status_url": f"{BASE}/{APP}/requests/req-1/status",
    "cancel_url": f"{BASE}/{APP}/requests/req-1/cancel",
    "queue_position": 0,
    "status": "IN_QUEUE",
}


def test_submit_request_shape() -> None:
    rec = Recorder(httpx.Response(200, json=SUBMITTED))
    client, sleeps = make_client(rec)
    answer = client.submit(Endpoint.VIDEO, INPUT, HOOK)
    assert answer.request_id == "req-1"
    (req,) = rec.requests
    assert req.method == "POST"
    assert req.url.path == f"/{APP}/faceswapvideo"
    assert "fal_webhook=https%3A%2F%2Fhook.example.test%2F%3Fjob_id%3Dabc%26x%3D1" in str(req.url)
    assert parse_qs(urlsplit(str(req.url)).query) == {"fal_webhook": [HOOK]}
    assert req.headers["authorization"] == f"Key {KEY}"
    assert req.headers["content-type"] == "application/json"
    assert json.loads(req.content) == {
        "source_face_url": "https://h/f.jpg", "target_video_url": "https://h/v.mp4", "enable_occlusion_prevention": False,
    }
    assert req.extensions["timeout"]["connect"] is not None  # explicit timeouts on every call
    assert sleeps == []
    assert KEY not in repr(client)


@pytest.mark.parametrize(
    ("answer", "code", "retryable"),
    [
        (httpx.ConnectError("refused"), "PROVIDER_UNAVAILABLE", True),
        (httpx.ConnectTimeout("slow connect"), "PROVIDER_UNAVAILABLE", True),
        (httpx.ReadTimeout("no answer"), "SUBMIT_OUTCOME_UNKNOWN", False),
        (httpx.RemoteProtocolError("dropped"), "SUBMIT_OUTCOME_UNKNOWN", False),
        (httpx.WriteError("broken pipe"), "SUBMIT_OUTCOME_UNKNOWN", False),
        (httpx.Response(500, json={"detail": "boom"}), "SUBMIT_OUTCOME_UNKNOWN", False),
        (httpx.Response(502, text="<html>nginx</html>"), "SUBMIT_OUTCOME_UNKNOWN", False),
        (httpx.Response(504, json={"detail": "t"}), "SUBMIT_OUTCOME_UNKNOWN", False),
        (httpx.Response(200, json={"no": "request id"}), "SUBMIT_OUTCOME_UNKNOWN", False),
        (httpx.Response(200, text="not json"), "SUBMIT_OUTCOME_UNKNOWN", False),
        (httpx.Response(429, json={"detail": "queue full"}), "PROVIDER_UNAVAILABLE", True),
        (httpx.Response(503, json={"detail": "unavailable"}), "PROVIDER_UNAVAILABLE", True),
        (httpx.Response(401, json={"detail": "No user found for Key ID and Secret"}), "PROVIDER_REJECTED", False),
        (httpx.Response(422, json={"detail": [{"loc": ["body", "target_video_url"], "msg": "bad", "type": "x"}]}),
         "PROVIDER_REJECTED", False),
    ],
)
def test_submit_is_never_retried(answer: object, code: str, retryable: bool) -> None:
    rec = Recorder(answer, httpx.Response(200, json=SUBMITTED))  # a retry would succeed: it must not happen
    client, sleeps = make_client(rec)
    with pytest.raises(ProviderError) as info:
        client.submit(Endpoint.VIDEO, INPUT, HOOK)
    assert len(rec.requests) == 1 and sleeps == []
    assert info.value.code == code
    assert info.value.retryable is retryable


def test_submit_rejection_keeps_detail() -> None:
    detail = [{"loc": ["body", "source_face_url"], "msg": "file extension not allowed", "type": "url_extension"}]
    client, _ = make_client(Recorder(httpx.Response(422, json={"detail": detail})))
    with pytest.raises(ProviderError) as info:
        client.submit(Endpoint.IMAGE, INPUT, HOOK)
    assert info.value.status_code == 422 and info.value.detail == detail
    assert "source_face_url" in info.value.message


def test_status_url_is_sub_path_less_with_logs() -> None:
    rec = Recorder(httpx.Response(202, json={"status": "IN_PROGRESS", "logs": [{"message": "frame 1"}]}))
    client, _ = make_client(rec)
    status = client.status(Endpoint.VIDEO_MULTI, "req/1")
    assert status.status == "IN_PROGRESS" and status.logs[0].message == "frame 1"
    req = rec.requests[0]
    assert req.method == "GET"
    assert req.url.raw_path.decode() == f"/{APP}/requests/req%2F1/status?logs=1"
    assert req.headers["authorization"] == f"Key {KEY}"
    client.status(Endpoint.VIDEO, "r2", logs=False)
    assert rec.requests[1].url.params["logs"] == "0"


def test_status_retries_then_succeeds_with_backoff() -> None:
    rec = Recorder(
        httpx.ReadTimeout("slow"),
        httpx.Response(503, json={"detail": "x"}),
        httpx.Response(429, headers={"Retry-After": "1"}, json={}),
        httpx.Response(408),
        httpx.Response(200, json={"status": "COMPLETED", "logs": None, "metrics": {"inference_time": 2.0}}),
    )
    client, sleeps = make_client(rec, attempts=5)
    assert client.status(Endpoint.VIDEO, "r").is_completed
    assert len(rec.requests) == 5
    assert sleeps[0] == pytest.approx(0.1) and sleeps[1] == pytest.approx(0.2)  # exponential (rand=0.5 → ×1)
    assert sleeps[2] == pytest.approx(1.0)  # Retry-After honoured, capped at max_delay
    assert sleeps[3] == pytest.approx(0.8)


def test_retries_are_bounded() -> None:
    rec = Recorder(httpx.Response(502, text="bad gateway"))
    client, sleeps = make_client(rec, attempts=3)
    with pytest.raises(ProviderError) as info:
        client.result(Endpoint.VIDEO, "r")
    assert len(rec.requests) == 3 and len(sleeps) == 2
    assert info.value.code == "PROVIDER_UNAVAILABLE" and info.value.retryable

    rec = Recorder(httpx.ConnectError("down"))
    client, sleeps = make_client(rec, attempts=2)
    with pytest.raises(ProviderError) as info:
        client.status(Endpoint.VIDEO, "r")
    assert len(rec.requests) == 2 and info.value.code == "PROVIDER_UNAVAILABLE"


def test_jitter_stays_in_range() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=8.0)
    assert policy.delay(1, lambda: 0.0) == pytest.approx(0.5)
    assert policy.delay(1, lambda: 1.0) == pytest.approx(1.5)
    assert policy.delay(10, lambda: 1.0) == pytest.approx(8.0)


def test_user_request_timeout_504_not_retried() -> None:
    rec = Recorder(httpx.Response(504, headers={"X-Fal-Request-Timeout-Type": "user"}, json={"detail": "t"}))
    client, _ = make_client(rec)
    with pytest.raises(ProviderError) as info:
        client.result(Endpoint.VIDEO, "r")
    assert len(rec.requests) == 1 and info.value.status_code == 504


def test_result_ok_and_422() -> None:
    out = {"video": {"url": "https://v3.fal.media/files/x.mp4"}, "processing_time_ms": 5}
    rec = Recorder(httpx.Response(200, json=out))
    client, _ = make_client(rec)
    assert client.result(Endpoint.VIDEO, "req-1") == out
    assert rec.requests[0].url.path == f"/{APP}/requests/req-1"

    detail = [{"loc": ["body", "source_face_url"], "msg": "no face found", "type": "no_face"}]
    rec = Recorder(httpx.Response(422, json={"detail": detail}))
    client, sleeps = make_client(rec)
    with pytest.raises(ProviderError) as info:
        client.result(Endpoint.VIDEO, "req-1")
    assert info.value.status_code == 422 and info.value.detail == detail and sleeps == []
    assert info.value.code == "PROVIDER_FAILED" and "no face found" in info.value.message

    for bad in (httpx.Response(200, text="nope"), httpx.Response(200, json=[1])):
        client, _ = make_client(Recorder(bad))
        with pytest.raises(ProviderError) as info:
            client.result(Endpoint.VIDEO, "r")
        assert info.value.code == "PROVIDER_BAD_RESPONSE"


def test_cancel() -> None:
    rec = Recorder(httpx.Response(202, json={"status": "CANCELLATION_REQUESTED"}))
    client, _ = make_client(rec)
    assert client.cancel(Endpoint.IMAGE, "r") is True
    assert rec.requests[0].method == "PUT" and rec.requests[0].url.path == f"/{APP}/requests/r/cancel"
    client, _ = make_client(Recorder(httpx.Response(400, json={"status": "ALREADY_COMPLETED"})))
    assert client.cancel(Endpoint.IMAGE, "r") is False
    rec = Recorder(httpx.Response(503), httpx.Response(200, json={"success": True}))
    client, _ = make_client(rec)
    assert client.cancel(Endpoint.IMAGE, "r") is True and len(rec.requests) == 2
    client, _ = make_client(Recorder(httpx.Response(404, json={"detail": "Request not found"})))
    with pytest.raises(ProviderError) as info:
        client.cancel(Endpoint.IMAGE, "r")
    assert info.value.status_code == 404


def test_status_unknown_request_is_an_error() -> None:
    client, _ = make_client(Recorder(httpx.Response(404, json={"detail": "not found"})))
    with pytest.raises(ProviderError) as info:
        client.status(Endpoint.VIDEO, "r")
    assert info.value.code == "PROVIDER_REJECTED" and info.value.detail == "not found"


def test_base_url_with_path_prefix() -> None:
    rec = Recorder(httpx.Response(200, json=SUBMITTED))
    client = FalQueueClient("http://127.0.0.1:8300/", APP, KEY, http=httpx.Client(transport=httpx.MockTransport(rec)))
    client.submit(Endpoint.IMAGE_MULTI, INPUT, None)
    assert str(rec.requests[0].url) == f"http://127.0.0.1:8300/{APP}/faceswapimagemulti"
