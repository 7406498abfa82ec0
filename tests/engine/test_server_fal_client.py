"""A stock fal client against the engine server.

fal-client (PyPI ``fal-client``) always builds ``https://{FAL_QUEUE_RUN_HOST}/…`` for submit, so the test points its
module constant ``QUEUE_URL_FORMAT`` at ``http://127.0.0.1:<port>/`` (the only change; every later URL comes from the
server's own submit answer). The second test replays fal_client's exact request sequence with plain httpx, so the
protocol stays covered even where fal-client is not installed.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator

import cv2
import httpx
import pytest

from faceswap_engine import sample_media
from faceswap_engine.server import EngineProcessor, ServerConfig, create_app
from faceswap_engine.server.testing import ServerThread
from tests.engine.test_server_protocol import BLANK, FACE, KEY, DrawSwapper

APP = "half-moon-ai/ai-face-swap"
TARGET = "data:image/jpeg;base64," + base64.b64encode(sample_media.grace_hopper().read_bytes()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("falc"), keys=[KEY])
    with ServerThread(create_app(config, EngineProcessor(config, swapper=DrawSwapper()))) as running:
        yield running


@pytest.fixture()
def fal(server: ServerThread, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201 - fal_client.SyncClient
    import fal_client  # requirements-dev pins it; a missing package fails this test
    import fal_client.client as fal_module

    monkeypatch.setattr(fal_module, "QUEUE_URL_FORMAT", f"{server.url}/")
    return fal_client, fal_client.SyncClient(key=KEY, default_timeout=60)


def test_fal_client_subscribe_submit_status_result_cancel(fal) -> None:  # noqa: ANN001
    fal_client, client = fal
    updates: list[object] = []
    result = client.subscribe(f"{APP}/faceswapimage", {"source_face_url": FACE, "target_image_url": TARGET},
                              with_logs=True, on_queue_update=updates.append)
    assert result["image"]["content_type"] == "image/jpeg" and result["image"]["width"] == 512
    assert isinstance(updates[-1], fal_client.Completed) or updates  # Queued/InProgress updates seen

    handle = client.submit(f"{APP}/faceswapimage", {"source_face_url": FACE, "target_image_url": TARGET})
    out = handle.get()
    assert out["image"]["url"].startswith("http://127.0.0.1")
    status = handle.status(with_logs=True)
    assert isinstance(status, fal_client.Completed) and status.logs and status.metrics["inference_time"] is not None
    assert handle.status(with_logs=False).logs is None
    # the handle fal_client builds from an id alone (sub-path dropped) equals the one the server returned
    assert client.get_handle(f"{APP}/faceswapimage", handle.request_id) == handle
    assert client.result(f"{APP}/faceswapimage", handle.request_id) == out
    with pytest.raises(fal_client.FalClientHTTPError) as info:
        handle.cancel()
    assert info.value.status_code == 400

    failing = client.submit(f"{APP}/faceswapimage", {"source_face_url": BLANK, "target_image_url": TARGET})
    for _ in failing.iter_events(interval=0.05):
        pass
    with pytest.raises(fal_client.FalClientHTTPError) as info:
        failing.get()
    assert info.value.status_code == 422 and "no face" in str(info.value).lower()


def test_fal_client_request_sequence_over_httpx(server: ServerThread) -> None:
    """fal_client's calls, byte for byte in shape: POST app/path (json, Key auth, fal_webhook urlencoded), then GET
    status_url?logs=false|true until COMPLETED, GET response_url, PUT cancel_url."""
    headers = {"Authorization": f"Key {KEY}", "User-Agent": "fal-client/1.0.3 (python)"}
    with httpx.Client(headers=headers, timeout=30, follow_redirects=True) as http:
        r = http.post(f"{server.url}/{APP}/faceswapimage?fal_webhook=http%3A%2F%2F127.0.0.1%3A9%2Fhook",
                      json={"source_face_url": FACE, "target_image_url": TARGET})
        r.raise_for_status()
        data = r.json()
        for key in ("request_id", "response_url", "status_url", "cancel_url"):
            assert key in data
        while True:
            s = http.get(data["status_url"], params={"logs": False})
            s.raise_for_status()
            body = s.json()
            if body["status"] == "IN_QUEUE":
                assert isinstance(body["queue_position"], int)
            elif body["status"] == "IN_PROGRESS":
                assert "logs" in body and body["logs"] is None
            else:
                assert body["status"] == "COMPLETED" and body["logs"] is None and "metrics" in body
                break
        assert http.get(data["status_url"], params={"logs": True}).json()["logs"]
        out = http.get(data["response_url"])
        out.raise_for_status()
        assert "x-fal-request-id" in out.headers
        image = httpx.get(out.json()["image"]["url"])
        assert cv2.imdecode(__import__("numpy").frombuffer(image.content, "uint8"), cv2.IMREAD_COLOR) is not None
        assert http.put(data["cancel_url"]).status_code == 400
