"""``faceswap-engine swap`` and ``serve`` as a user runs them (subprocess), with the real engine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import httpx
import numpy as np

from faceswap_engine import sample_media
from faceswap_engine.cli import build_parser
from faceswap_engine.server.testing import free_port, make_clip

ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("engine", "layers/common", "local", "."))}


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faceswap_engine", *args], capture_output=True, text=True,
                          timeout=timeout, env=ENV, cwd=ROOT)


def test_swap_image(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    r = cli("swap", "--face", str(sample_media.astronaut()), "--target", str(sample_media.male_portrait()),
            "-o", str(out), "-q")
    assert r.returncode == 0, r.stderr
    got = cv2.imread(str(out))
    original = cv2.imread(str(sample_media.male_portrait()))
    assert got.shape == original.shape and not np.array_equal(got, original)


def test_swap_video_with_progress_bar(tmp_path: Path) -> None:
    still = cv2.imread(str(sample_media.male_portrait()))
    clip = make_clip(tmp_path / "in.mov", frames=30, fps=30, size=(320, 240), container="mov", still=still)
    out = tmp_path / "out.mp4"
    r = cli("swap", "--face", str(sample_media.astronaut()), "--target", str(clip), "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "25/25" in r.stderr  # tqdm's bar reached the end
    assert "FPS reduced from 30 to 25" in r.stderr
    with av.open(str(out)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 25 and c.streams.audio


def test_swap_errors_are_one_clear_line(tmp_path: Path) -> None:
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((100, 100, 3), 120, np.uint8))
    r = cli("swap", "--face", str(blank), "--target", str(sample_media.male_portrait()), "-o", str(tmp_path / "o.png"))
    assert r.returncode == 3 and "no_face_in_source" in r.stderr
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00" * 1000)
    r = cli("swap", "--face", str(sample_media.astronaut()), "--target", str(junk), "-o", str(tmp_path / "o.mp4"))
    assert r.returncode == 3 and "unsupported_format" in r.stderr


def test_parser_options() -> None:
    args = build_parser().parse_args(["serve", "--port", "9", "--key", "a:b", "--allowed-fetch", "127.0.0.1:4566,*.x",
                                      "--workers", "2", "--public-url", "http://h:9"])
    assert args.key == ["a:b"] and args.workers == 2 and args.allowed_fetch == ["127.0.0.1:4566,*.x"]
    args = build_parser().parse_args(["swap", "--face", "f", "--target", "t", "-o", "o", "--occlusion",
                                      "--gender", "female", "--face2", "g", "--gender2", "male"])
    assert args.occlusion and args.gender2 == "male"


def test_serve_subprocess(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "faceswap_engine", "serve", "--port", str(port), "--data-dir",
                             str(tmp_path / "data"), "--key", "k:s", "--log-level", "WARNING"],
                            env=ENV, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.2)
        assert r.json()["status"] == "ok"
        assert httpx.get(f"http://127.0.0.1:{port}/.well-known/jwks.json").json()["keys"][0]["crv"] == "Ed25519"
        assert httpx.post(f"http://127.0.0.1:{port}/half-moon-ai/ai-face-swap/faceswapimage", json={}).status_code == 401
        assert (tmp_path / "data" / "webhook-signing-key.pem").exists()
    finally:
        proc.terminate()
        proc.wait(10)
