"""Run the server on a free loopback port in a background thread (tests, the local stack, benchmarks)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING

import httpx
import uvicorn
from fastapi import FastAPI

if TYPE_CHECKING:
    from fractions import Fraction
    from pathlib import Path

    import numpy as np


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ServerThread:
    """``with ServerThread(app) as server: httpx.get(server.url + "/health")`` — real HTTP over loopback."""

    def __init__(self, app: FastAPI, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port, log_level="warning",
                                                     lifespan="on", access_log=False))
        self._thread = threading.Thread(target=self._server.run, name=f"uvicorn-{self.port}", daemon=True)

    def start(self, timeout: float = 15.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"server on {self.url} did not start")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 15.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


def wait_http(url: str, timeout: float = 15.0) -> None:
    """Block until ``url`` answers (any status); used by callers that start the server as a subprocess."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


class _Quiet:
    def log_message(self, *args: object) -> None:  # noqa: D102 - silence http.server
        pass


class HttpFixture:
    """A tiny threaded HTTP server on loopback for tests: serves ``files`` (path → bytes) and records POSTs.

    ``fail_first`` answers the first N POSTs with 500 (webhook retry tests); ``hang`` makes every GET stall
    without answering (timeout tests).
    """

    def __init__(self, files: dict[str, bytes] | None = None, fail_first: int = 0, hang: bool = False) -> None:
        import http.server

        self.files = dict(files or {})
        self.posts: list[tuple[dict[str, str], bytes]] = []
        self.fail_first = fail_first
        self.hang = hang
        self._release = threading.Event()
        fixture = self

        class Handler(_Quiet, http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                if fixture.hang:
                    fixture._release.wait(60)
                    return
                body = fixture.files.get(self.path.split("?", 1)[0])
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                fixture.posts.append(({k: v for k, v in self.headers.items()}, body))
                code = 500 if len(fixture.posts) <= fixture.fail_first else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-fixture", daemon=True)

    def __enter__(self) -> HttpFixture:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._server.shutdown()
        self._server.server_close()


# Containers of the seed's allow-list → (muxer, video codec, audio codec or None), all encodable by PyAV's FFmpeg.
SEED_CONTAINERS: dict[str, tuple[str, str, str | None]] = {
    "avi": ("avi", "mpeg4", "ac3"),
    "m4v": ("ipod", "libx264", "aac"),
    "mkv": ("matroska", "libx264", "libmp3lame"),
    "mp4": ("mp4", "libx264", "aac"),
    "mpeg": ("mpeg", "mpeg1video", "mp2"),
    "mov": ("mov", "mpeg4", "pcm_s16le"),
    "mxf": ("mxf", "mpeg2video", "pcm_s16le"),
    "webm": ("webm", "libvpx-vp9", "libopus"),
    "wmv": ("asf", "wmv2", "wmav2"),
}


def make_clip(
    path: "Path | str",
    *,
    frames: int = 10,
    fps: "int | Fraction" = 25,
    size: tuple[int, int] = (96, 64),
    container: str = "mp4",
    video_codec: str | None = None,
    audio_codec: str | None = "default",
    still: "np.ndarray | None" = None,
    motion: bool = True,
    rotation: int = 0,
) -> "Path":
    """Write a small synthetic clip with PyAV (moving pattern, or a moving/rotating ``still``) and a sine tone.

    ``container`` is one of SEED_CONTAINERS' keys; codecs default to that table's.
    """
    import math
    from fractions import Fraction
    from pathlib import Path

    import av
    import cv2
    import numpy as np

    muxer, vcodec, acodec = SEED_CONTAINERS[container]
    vcodec = video_codec or vcodec
    acodec = acodec if audio_codec == "default" else audio_codec
    rate = Fraction(fps)
    w, h = size
    out = av.open(str(path), mode="w", format=muxer)
    vs = out.add_stream(vcodec, rate=rate)
    vs.width, vs.height = w, h
    vs.pix_fmt = "yuv420p"
    if rotation:
        vs.set_display_rotation(rotation)  # stored sideways, like a phone video
    if vcodec == "libvpx-vp9":
        vs.options = {"deadline": "realtime", "cpu-used": "8"}
    elif vcodec == "libx264":
        vs.options = {"preset": "ultrafast"}
    if vcodec in ("mpeg1video", "mpeg2video"):
        vs.codec_context.bit_rate = 2_000_000
    a = None
    if acodec:
        sample_rate = 48000 if acodec in ("libopus", "ac3", "mp2", "pcm_s16le") else 44100
        a = out.add_stream(acodec, rate=sample_rate)
        a.codec_context.layout = "stereo"
        a.codec_context.bit_rate = 128_000
    base = np.zeros((h, w, 3), np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(frames):
        if still is not None:
            angle = 8 * math.sin(2 * math.pi * i / max(1, float(rate) * 3)) if motion else 0
            dx = 0.05 * w * math.sin(2 * math.pi * i / max(1, float(rate) * 4)) if motion else 0
            m = cv2.getRotationMatrix2D((still.shape[1] / 2, still.shape[0] / 2), angle, 1.0)
            m[0, 2] += dx
            scale = min(w / still.shape[1], h / still.shape[0])
            img = cv2.resize(still, (int(still.shape[1] * scale), int(still.shape[0] * scale)))
            m = cv2.getRotationMatrix2D((img.shape[1] / 2, img.shape[0] / 2), angle, 1.0)
            m[0, 2] += dx + (w - img.shape[1]) / 2
            m[1, 2] += (h - img.shape[0]) / 2
            img = cv2.warpAffine(img, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
        else:
            img = base.copy()
            img[..., 0] = (xx * 255 // max(1, w - 1)).astype(np.uint8)
            img[..., 1] = ((yy + 3 * i) % 256).astype(np.uint8)
            img[..., 2] = 128
            img[: h // 4, : w // 4] = (0, 0, 255)  # a red corner block shows orientation
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
        frame.pts = i
        frame.time_base = 1 / rate
        out.mux(vs.encode(frame))
    out.mux(vs.encode(None))
    if a is not None:
        ctx = a.codec_context
        n = ctx.frame_size or 1024
        total = int(frames / float(rate) * ctx.sample_rate)
        t0 = 0
        fmt = ctx.format.name
        while t0 < total:
            t = (np.arange(t0, t0 + n) / ctx.sample_rate).astype(np.float32)
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            if fmt.startswith("s16"):
                samples = (tone * 32767).astype(np.int16)
            elif fmt.startswith("s32"):
                samples = (tone * 2**31 - 1).astype(np.int32)
            else:
                samples = tone
            if fmt.endswith("p"):
                data = np.stack([samples, samples])
            else:
                data = np.stack([samples, samples], axis=1).reshape(1, -1)
            af = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
            af.sample_rate = ctx.sample_rate
            af.pts = t0
            af.time_base = Fraction(1, ctx.sample_rate)
            out.mux(a.encode(af))
            t0 += n
        out.mux(a.encode(None))
    out.close()
    return Path(path)
