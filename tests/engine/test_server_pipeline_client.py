"""Interop: the pipeline's own provider client and webhook verifier (faceswap_common) against the engine server,
over real HTTP — the exact pairing the local stack runs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from faceswap_common.api_models import Endpoint, FaceSwapInputImage, WebhookPayload
from faceswap_common.provider import FalQueueClient, ProviderError
from faceswap_common.signatures import JwksCache, WebhookVerifier
from faceswap_engine.server import EngineProcessor, ServerConfig, create_app
from faceswap_engine.server.testing import HttpFixture, ServerThread
from tests.engine.test_server_protocol import BLANK, FACE, KEY, TARGET_JPEG, DrawSwapper

APP = "half-moon-ai/ai-face-swap"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("interop"), keys=[KEY])
    with ServerThread(create_app(config, EngineProcessor(config, swapper=DrawSwapper()))) as running:
        yield running


def wait_completed(client: FalQueueClient, request_id: str) -> None:
    deadline = time.monotonic() + 30
    while not client.status(Endpoint.IMAGE, request_id).is_completed:
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_pipeline_client_and_verifier(server: ServerThread) -> None:
    client = FalQueueClient(server.url, APP, KEY)
    with HttpFixture() as receiver, httpx.Client() as http:
        sub = client.submit(Endpoint.IMAGE, FaceSwapInputImage(source_face_url=FACE, target_image_url=TARGET_JPEG),
                            f"{receiver.url}/hook?job_id=j1")
        wait_completed(client, sub.request_id)
        status = client.status(Endpoint.IMAGE, sub.request_id, logs=True)
        assert status.is_completed and not status.failed and status.logs
        out = client.result(Endpoint.IMAGE, sub.request_id)
        assert out["image"]["url"].startswith(server.url)
        deadline = time.monotonic() + 20
        while not receiver.posts:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        headers, body = receiver.posts[0]
        verifier = WebhookVerifier(JwksCache(f"{server.url}/.well-known/jwks.json", http))
        verified = verifier.verify(headers, body)
        assert verified.request_id == sub.request_id and verified.user_id == KEY.split(":")[0]
        payload = WebhookPayload.model_validate_json(body)
        assert payload.is_ok and payload.payload == out

        bad = client.submit(Endpoint.IMAGE, FaceSwapInputImage(source_face_url=BLANK, target_image_url=TARGET_JPEG),
                            None)
        wait_completed(client, bad.request_id)
        assert client.status(Endpoint.IMAGE, bad.request_id).failed
        with pytest.raises(ProviderError) as info:
            client.result(Endpoint.IMAGE, bad.request_id)
        assert info.value.status_code == 422
    client.close()
