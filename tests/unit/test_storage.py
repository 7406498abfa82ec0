"""Streaming copy of a result URL into S3: multipart, bounded memory, abort on any failure, limits."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from faceswap_common.errors import PipelineError
from faceswap_common.storage import head, presign_get, stream_url_to_s3
from faceswap_common.url_guard import UrlGuard, UrlNotAllowed

from .support import BUCKET

MiB = 1024 * 1024
URL = "https://v3.fal.media/files/lion/result.mp4"
KEY = "outputs/j1/result.mp4"


def pattern_chunks(total: int, chunk: int = MiB, fail_after: int | None = None) -> Iterator[bytes]:
    """Deterministic pseudo-random bytes, generated on the fly (never all in memory)."""
    sent = 0
    counter = 0
    while sent < total:
        if fail_after is not None and sent >= fail_after:
            raise httpx.ReadError("connection reset by peer")
        block = hashlib.sha256(counter.to_bytes(8, "big")).digest() * (chunk // 32)
        block = block[: min(chunk, total - sent)]
        counter += 1
        sent += len(block)
        yield block


def digest_of(chunks: Iterator[bytes]) -> str:
    h = hashlib.sha256()
    for c in chunks:
        h.update(c)
    return h.hexdigest()


class PartSpy:
    """Wraps the S3 client to record part sizes and aborts (proves one bounded buffer per part)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.part_sizes: list[int] = []
        self.aborted = 0

    def upload_part(self, **kwargs: Any) -> Any:
        self.part_sizes.append(len(kwargs["Body"]))
        return self._s3.upload_part(**kwargs)

    def abort_multipart_upload(self, **kwargs: Any) -> Any:
        self.aborted += 1
        return self._s3.abort_multipart_upload(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s3, name)


def http_serving(handler: Any) -> httpx.Client:
    return httpx.Client(transport=httpx.MockTransport(handler))


def assert_nothing_left(s3: Any) -> None:
    assert head(s3, BUCKET, KEY) is None
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", []) == []


def test_streams_50_mib_through_real_multipart(s3: Any) -> None:
    total = 50 * MiB + 12345
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(200, headers={"Content-Length": str(total), "Content-Type": "video/mp4"},
                              content=pattern_chunks(total))

    spy = PartSpy(s3)
    size = stream_url_to_s3(http_serving(handler), URL, spy, BUCKET, KEY, "video/mp4", max_bytes=60 * MiB,
                            url_check=UrlGuard(["*.fal.media"], resolver=lambda *a: [(2, 1, 6, "", ("93.184.216.34", 443))]))
    assert size == total and seen == [URL]
    assert spy.part_sizes == [8 * MiB] * 6 + [total - 48 * MiB]  # never more than one part in memory
    info = head(s3, BUCKET, KEY)
    assert info is not None and info.size == total and info.content_type == "video/mp4"
    body = s3.get_object(Bucket=BUCKET, Key=KEY)["Body"]
    assert digest_of(iter(lambda: body.read(MiB), b"")) == digest_of(pattern_chunks(total))


def test_mid_stream_break_aborts_and_leaves_no_object(s3: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(30 * MiB)},
                              content=pattern_chunks(30 * MiB, fail_after=20 * MiB))

    spy = PartSpy(s3)
    with pytest.raises(PipelineError) as info:
        stream_url_to_s3(http_serving(handler), URL, spy, BUCKET, KEY, "video/mp4", max_bytes=60 * MiB)
    assert info.value.code == "RESULT_DOWNLOAD_FAILED"
    assert len(spy.part_sizes) == 2 and spy.aborted == 1  # parts were uploaded, then thrown away
    assert_nothing_left(s3)


def test_over_limit_without_content_length_aborts(s3: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=pattern_chunks(12 * MiB))

    with pytest.raises(PipelineError) as info:
        stream_url_to_s3(http_serving(handler), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=10 * MiB)
    assert info.value.code == "RESULT_TOO_LARGE"
    assert_nothing_left(s3)


def test_declared_over_limit_refused_before_upload(s3: Any) -> None:
    spy = PartSpy(s3)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(11 * MiB)}, content=pattern_chunks(11 * MiB))

    with pytest.raises(PipelineError) as info:
        stream_url_to_s3(http_serving(handler), URL, spy, BUCKET, KEY, "video/mp4", max_bytes=10 * MiB)
    assert info.value.code == "RESULT_TOO_LARGE" and spy.part_sizes == [] and spy.aborted == 0
    assert_nothing_left(s3)


def test_content_length_mismatch_aborts(s3: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Length": str(3 * MiB)}, content=pattern_chunks(2 * MiB))

    with pytest.raises(PipelineError) as info:
        stream_url_to_s3(http_serving(handler), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=10 * MiB)
    assert info.value.code in ("RESULT_SIZE_MISMATCH", "RESULT_DOWNLOAD_FAILED")
    assert_nothing_left(s3)


def test_small_and_empty_results(s3: Any) -> None:
    def small(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"png-bytes")

    assert stream_url_to_s3(http_serving(small), URL, s3, BUCKET, "outputs/j2/r.png", "image/png", max_bytes=MiB) == 9
    assert s3.get_object(Bucket=BUCKET, Key="outputs/j2/r.png")["Body"].read() == b"png-bytes"

    def empty(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"")

    with pytest.raises(PipelineError) as info:
        stream_url_to_s3(http_serving(empty), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=MiB)
    assert info.value.code == "RESULT_EMPTY"
    assert_nothing_left(s3)


def test_http_error_status(s3: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, text="gone")

    with pytest.raises(PipelineError) as info:
        stream_url_to_s3(http_serving(handler), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=MiB)
    assert info.value.code == "RESULT_DOWNLOAD_FAILED" and info.value.detail["status_code"] == 404
    assert_nothing_left(s3)


def test_connect_failure(s3: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused")

    with pytest.raises(PipelineError) as info:
        stream_url_to_s3(http_serving(handler), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=MiB)
    assert info.value.code == "RESULT_DOWNLOAD_FAILED"
    assert_nothing_left(s3)


def test_redirects_are_rechecked_at_each_hop(s3: Any) -> None:
    fetched: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        if request.url.host == "v3.fal.media":
            return httpx.Response(302, headers={"Location": "https://v3b.fal.media/files/x.mp4"})
        if request.url.host == "v3b.fal.media":
            return httpx.Response(307, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        return httpx.Response(200, content=b"secret")

    guard = UrlGuard(["*.fal.media"], resolver=lambda *a: [(2, 1, 6, "", ("93.184.216.34", 443))])
    with pytest.raises(UrlNotAllowed):
        stream_url_to_s3(http_serving(handler), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=MiB, url_check=guard)
    assert fetched == [URL, "https://v3b.fal.media/files/x.mp4"]  # the metadata address was never fetched
    assert_nothing_left(s3)


def test_allowed_redirect_followed(s3: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/a":
            return httpx.Response(301, headers={"Location": "/b"})
        return httpx.Response(200, content=b"ok")

    guard = UrlGuard(["*.fal.media"], resolver=lambda *a: [(2, 1, 6, "", ("93.184.216.34", 443))])
    size = stream_url_to_s3(http_serving(handler), "https://v3.fal.media/a", s3, BUCKET, KEY, "video/mp4",
                            max_bytes=MiB, url_check=guard)
    assert size == 2


def test_too_many_redirects(s3: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "/again"})

    with pytest.raises(PipelineError, match="redirects"):
        stream_url_to_s3(http_serving(handler), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=MiB, max_redirects=2)


def test_presign_and_head(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="faces/my face+1.jpg", Body=b"abc", ContentType="image/jpeg")
    url = presign_get(s3, BUCKET, "faces/my face+1.jpg", 600)
    assert url.startswith("https://") and "/faces/my%20face%2B1.jpg?" in url and "Signature" in url
    info = head(s3, BUCKET, "faces/my face+1.jpg")
    assert info is not None and info.size == 3 and info.content_type == "image/jpeg" and info.etag
    assert head(s3, BUCKET, "faces/none.jpg") is None


class FakeStream:
    def __init__(self, ip: str) -> None:
        self.ip = ip

    def get_extra_info(self, name: str) -> object:
        return (self.ip, 443) if name == "server_addr" else None


def test_dns_rebinding_caught_at_connect(s3: Any) -> None:
    """The name resolved public when checked, but the connection went to a private address."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"metadata", extensions={"network_stream": FakeStream("169.254.169.254")})

    guard = UrlGuard(["*.fal.media"], resolver=lambda *a: [(2, 1, 6, "", ("93.184.216.34", 443))])
    with pytest.raises(UrlNotAllowed, match="connected to non-public"):
        stream_url_to_s3(http_serving(handler), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=MiB, url_check=guard)
    assert_nothing_left(s3)

    def public(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"video", extensions={"network_stream": FakeStream("93.184.216.34")})

    assert stream_url_to_s3(http_serving(public), URL, s3, BUCKET, KEY, "video/mp4", max_bytes=MiB, url_check=guard) == 5
