"""The server with its default processor, i.e. the real engine (faceswap_engine.swap): image, multi image, video with
audio (Megamind.avi), no face in the source, no face in the target. Real HTTP over loopback."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import cv2
import httpx
import numpy as np
import pytest

from faceswap_engine import sample_media
from faceswap_engine.server import ServerConfig, create_app
from faceswap_engine.server.testing import HttpFixture, ServerThread

KEY = "engine-key:engine-secret"
APP = "half-moon-ai/ai-face-swap"


def uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    config = ServerConfig(data_dir=tmp_path_factory.mktemp("real"), keys=[KEY], workers=1)
    with ServerThread(create_app(config)) as running:
        yield running


@pytest.fixture(scope="module")
def host() -> Iterator[HttpFixture]:
    files = {"/Megamind.avi": sample_media.megamind_video().read_bytes(),
             "/face.png": sample_media.astronaut().read_bytes()}
    with HttpFixture(files) as fixture:
        yield fixture


@pytest.fixture()
def http(server: ServerThread) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Key {KEY}"}, timeout=60) as client:
        yield client


def run(http: httpx.Client, endpoint: str, body: dict[str, Any], timeout: float = 120) -> tuple[httpx.Response, dict]:
    sub = http.post(f"/{APP}/{endpoint}", json=body).json()
    deadline = time.monotonic() + timeout
    while (status := http.get(sub["status_url"], params={"logs": 1})).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    return http.get(sub["response_url"]), status.json()


def test_real_image_swap_changes_the_face(http: httpx.Client) -> None:
    target = sample_media.male_portrait()
    r, _ = run(http, "faceswapimage", {"source_face_url": uri(sample_media.astronaut(), "image/png"),
                                       "target_image_url": uri(target, "image/jpeg")})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["image"]["content_type"] == "image/jpeg" and out["warning"] is None
    got = cv2.imdecode(np.frombuffer(httpx.get(out["image"]["url"]).content, np.uint8), cv2.IMREAD_COLOR)
    original = cv2.imread(str(target))
    assert got.shape == original.shape
    diff = np.abs(got.astype(int) - original.astype(int)).mean(axis=2)
    assert (diff > 20).mean() > 0.02  # a real region of the image changed (the face), not a pass-through


def test_real_no_face_in_source_is_422_and_server_keeps_serving(http: httpx.Client) -> None:
    blank = np.full((200, 200, 3), 140, np.uint8)
    blank_uri = "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", blank)[1].tobytes()).decode()
    r, status = run(http, "faceswapimage", {"source_face_url": blank_uri,
                                            "target_image_url": uri(sample_media.male_portrait(), "image/jpeg")})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "source_face_url"]
    assert r.json()["detail"][0]["type"] == "no_face_in_source"
    assert status["error_type"] == "no_face_in_source" and status["error"]
    r, _ = run(http, "faceswapimagemulti", {"source_face_url_1": uri(sample_media.astronaut(), "image/png"),
                                            "source_gender_1": "female", "source_face_url_2": blank_uri,
                                            "source_gender_2": "male",
                                            "target_image_url": uri(sample_media.group_photo(), "image/jpeg")})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "source_face_url_2"]


def test_real_no_face_in_target_returns_input_with_warning(http: httpx.Client) -> None:
    scenery = np.zeros((120, 160, 3), np.uint8)
    scenery[:, :, 1] = np.linspace(0, 255, 160, dtype=np.uint8)
    target_uri = "data:image/png;base64," + base64.b64encode(cv2.imencode(".png", scenery)[1].tobytes()).decode()
    r, _ = run(http, "faceswapimage", {"source_face_url": uri(sample_media.astronaut(), "image/png"),
                                       "target_image_url": target_uri})
    assert r.status_code == 200
    out = r.json()
    assert out["warning"] and "No face" in out["warning"]
    got = cv2.imdecode(np.frombuffer(httpx.get(out["image"]["url"]).content, np.uint8), cv2.IMREAD_COLOR)
    assert np.array_equal(got, scenery)


def test_real_video_keeps_frames_duration_and_audio(http: httpx.Client, host: HttpFixture, tmp_path: Path) -> None:
    r, status = run(http, "faceswapvideo", {"source_face_url": f"{host.url}/face.png",
                                            "target_video_url": f"{host.url}/Megamind.avi"}, timeout=300)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["warning"] is None and out["processing_time_ms"] > 0
    assert any("Processed 270/270 frames (100%)" in line["message"] for line in status["logs"])
    data = httpx.get(out["video"]["url"]).content
    assert len(data) == out["video"]["file_size"]
    path = tmp_path / "out.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        assert c.streams.audio and c.streams.audio[0].codec_context.name == "aac"
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
        duration = c.duration / av.time_base
    assert len(frames) == 270 and abs(duration - 270 * 125 / 2997) < 0.1
    with av.open(str(sample_media.megamind_video())) as c:
        original = [f.to_ndarray(format="bgr24") for _, f in zip(range(100), c.decode(video=0))]
    # Share of pixels changed by more than 30 levels: the encode alone changes at most 0.01% of them; the swapped
    # face (about 1-2% of this frame) changes far more, so > 0.5% means the face was swapped on that frame.
    changed = [float((np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 30).mean())
               for a, b in zip(frames[:100], original)]
    assert sum(share > 0.005 for share in changed) > 50  # the face is swapped on most frames
