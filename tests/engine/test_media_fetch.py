"""media.py and fetch.py: sniffing, size limits before decoding, data URIs, URL fetch limits and timeouts."""

from __future__ import annotations

import base64
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from faceswap_engine import media, sample_media
from faceswap_engine.errors import CorruptMedia, FetchFailed, InvalidDataUri, MediaTooLarge, UnsupportedFormat
from faceswap_engine.fetch import FetchLimits, fetch, host_allowed
from faceswap_engine.server.testing import HttpFixture, make_clip


def huge_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header declaring an enormous image, with almost no pixel data behind it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def encoded(ext: str) -> bytes:
    img = cv2.imread(str(sample_media.astronaut()))
    ok, buf = cv2.imencode(ext, img)
    assert ok
    return buf.tobytes()


@pytest.mark.parametrize(("ext", "fmt"), [(".png", "png"), (".jpg", "jpeg"), (".bmp", "bmp"), (".tiff", "tiff"),
                                          (".webp", "webp")])
def test_seed_image_formats_decode(ext: str, fmt: str) -> None:
    image = media.decode_image(encoded(ext), ["source_face_url"])
    assert image.format == fmt and image.bgr.shape == (512, 512, 3) and image.bgr.dtype == np.uint8


def test_enormous_image_refused_before_decoding() -> None:
    with pytest.raises(MediaTooLarge, match="30000x30000") as info:
        media.decode_image(huge_png(), ["target_image_url"])
    assert info.value.as_detail()["loc"] == ["body", "target_image_url"]


def test_unsupported_and_corrupt_images() -> None:
    with pytest.raises(UnsupportedFormat, match="GIF"):
        media.decode_image(b"GIF89a" + b"\x00" * 100, ["x"])
    with pytest.raises(UnsupportedFormat, match="text"):
        media.decode_image(b"<html><body>not found</body></html>", ["x"])
    png = encoded(".png")
    with pytest.raises(CorruptMedia):
        media.decode_image(png[:200], ["x"])
    with pytest.raises(CorruptMedia):
        media.decode_image(b"", ["x"])


def test_video_sniffing(tmp_path: Path) -> None:
    for ext in ("avi", "mkv", "mp4", "mpeg", "mxf", "webm", "wmv", "mov", "m4v"):
        clip = make_clip(tmp_path / f"c.{ext}", frames=2, container=ext, audio_codec=None)
        assert media.sniff_video(clip.read_bytes()[:512]) is not None, ext
    with pytest.raises(UnsupportedFormat):
        media.require_video_format(encoded(".png")[:512], ["target_video_url"])


def test_encode_keeps_format_family() -> None:
    img = np.full((20, 30, 3), 90, np.uint8)
    assert media.output_format_for("jpeg") == "jpeg" and media.output_format_for("webp") == "png"
    assert media.encode_image(img, "jpeg")[:3] == b"\xff\xd8\xff"
    assert media.encode_image(img, "png")[:4] == b"\x89PNG"


def test_data_uris() -> None:
    png = encoded(".png")
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    assert fetch(uri, ["f"], FetchLimits()).data == png
    with pytest.raises(InvalidDataUri, match="base64"):
        fetch("data:image/png,not-base64-at-all", ["f"], FetchLimits())
    with pytest.raises(InvalidDataUri):
        fetch("data:image/png;base64,@@@not*base64@@@", ["f"], FetchLimits())
    with pytest.raises(MediaTooLarge):
        fetch(uri, ["f"], FetchLimits(max_bytes=1000))


def test_url_fetch_to_memory_and_file(tmp_path: Path) -> None:
    payload = b"\x89PNG\r\n\x1a\n" + b"x" * 5000
    with HttpFixture({"/a.png": payload}) as server:
        got = fetch(f"{server.url}/a.png?sig=1", ["f"], FetchLimits())
        assert got.data == payload and got.size == len(payload)
        dest = tmp_path / "v.bin"
        got = fetch(f"{server.url}/a.png", ["f"], FetchLimits(), dest=dest)
        assert got.path == dest and dest.read_bytes() == payload
        with pytest.raises(MediaTooLarge):
            fetch(f"{server.url}/a.png", ["f"], FetchLimits(max_bytes=100))
        with pytest.raises(FetchFailed, match="404"):
            fetch(f"{server.url}/missing.png", ["f"], FetchLimits())
        with pytest.raises(FetchFailed, match="allowed"):
            fetch(f"{server.url}/a.png", ["f"], FetchLimits(allowed_hosts=["*.example.com"]))


def test_url_that_never_answers_times_out() -> None:
    with HttpFixture(hang=True) as server:
        with pytest.raises(FetchFailed, match="timed out") as info:
            fetch(f"{server.url}/slow.png", ["source_face_url"], FetchLimits(read_timeout_s=0.5))
    assert info.value.loc == ["source_face_url"]


def test_unreachable_and_bad_scheme() -> None:
    with pytest.raises(FetchFailed):
        fetch("ftp://example.com/a.png", ["f"], FetchLimits())
    with pytest.raises(FetchFailed):
        fetch("http://127.0.0.1:1/a.png", ["f"], FetchLimits(connect_timeout_s=0.5))


def test_host_allowed_patterns() -> None:
    assert host_allowed("http://127.0.0.1:4566/b/k", ["127.0.0.1:4566"])
    assert not host_allowed("http://127.0.0.1:9999/b/k", ["127.0.0.1:4566"])
    assert host_allowed("https://v3.fal.media/x", ["*.fal.media"])
    assert host_allowed("https://anything/x", [])
