"""S3 helpers: presigned inputs, and the streaming copy of a result URL into the bucket.

The copy holds one part in memory (default 8 MiB), so a multi-GB video fits a small Lambda, and it
aborts the multipart upload on any failure, so a partial object never exists under outputs/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin

import httpx
from pydantic import BaseModel

from .errors import ErrorCode, PipelineError

MiB = 1024 * 1024
DEFAULT_PART_SIZE = 8 * MiB
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_REDIRECTS = 5


class ObjectInfo(BaseModel):
    key: str
    size: int
    content_type: str | None = None
    etag: str | None = None


def presign_get(s3: Any, bucket: str, key: str, expires: int = 3600) -> str:
    return s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=int(expires))


def head(s3: Any, bucket: str, key: str) -> ObjectInfo | None:
    """Size/type/etag of an object, None if it does not exist."""
    try:
        response = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return ObjectInfo(
        key=key,
        size=int(response["ContentLength"]),
        content_type=response.get("ContentType"),
        etag=(response.get("ETag") or "").strip('"') or None,
    )


def stream_url_to_s3(
    http: httpx.Client,
    url: str,
    s3: Any,
    bucket: str,
    key: str,
    content_type: str,
    max_bytes: int,
    part_size: int = DEFAULT_PART_SIZE,
    *,
    url_check: Callable[[str], Any] | None = None,
    timeout: httpx.Timeout = httpx.Timeout(60.0, connect=10.0),
    max_redirects: int = MAX_REDIRECTS,
) -> int:
    """GET url and write it to s3://bucket/key with a multipart upload; return the size in bytes.

    `url_check` (e.g. a UrlGuard) is applied to the URL and to every redirect hop before it is fetched,
    and, if it has `check_peer`, to the address actually connected to (DNS rebinding).
    Raises PipelineError (RESULT_TOO_LARGE, RESULT_SIZE_MISMATCH, RESULT_EMPTY, RESULT_DOWNLOAD_FAILED,
    RESULT_URL_NOT_ALLOWED); on any failure the upload is aborted and no object exists.
    """
    if part_size < MIN_PART_SIZE:
        raise ValueError(f"part_size must be at least {MIN_PART_SIZE}")
    with _open(http, url, url_check, timeout, max_redirects) as response:
        expected = _content_length(response)
        if expected is not None and expected > max_bytes:
            raise PipelineError(ErrorCode.RESULT_TOO_LARGE, f"result is {expected} bytes; the limit is {max_bytes}",
                                {"size": expected, "limit": max_bytes})
        upload_id = s3.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)["UploadId"]
        try:
            total = _upload_parts(response, s3, bucket, key, upload_id, part_size, max_bytes, expected)
        except BaseException as exc:
            _abort(s3, bucket, key, upload_id)
            if isinstance(exc, (httpx.HTTPError, OSError)):
                raise PipelineError(ErrorCode.RESULT_DOWNLOAD_FAILED, f"result download broke: {type(exc).__name__}: {exc}",
                                    {"url": url[:500]}) from exc
            raise
    return total


def _abort(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    """Abort, never masking the original failure (a lifecycle rule should still clean up what this misses)."""
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception:  # noqa: BLE001 - the caller re-raises the real error
        pass


def _upload_parts(
    response: httpx.Response, s3: Any, bucket: str, key: str, upload_id: str, part_size: int, max_bytes: int,
    expected: int | None,
) -> int:
    parts: list[dict[str, Any]] = []
    buffer = bytearray()
    total = 0

    def flush(data: bytes) -> None:
        number = len(parts) + 1
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    for chunk in response.iter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise PipelineError(ErrorCode.RESULT_TOO_LARGE, f"result exceeds the limit of {max_bytes} bytes",
                                {"limit": max_bytes})
        buffer += chunk
        while len(buffer) >= part_size:
            flush(bytes(buffer[:part_size]))
            del buffer[:part_size]
    if expected is not None and total != expected:
        raise PipelineError(ErrorCode.RESULT_SIZE_MISMATCH, f"got {total} bytes, Content-Length said {expected}",
                            {"size": total, "expected": expected})
    if total == 0:
        raise PipelineError(ErrorCode.RESULT_EMPTY, "result is empty (0 bytes)")
    if buffer:
        flush(bytes(buffer))
        buffer.clear()
    s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts})
    return total


def _content_length(response: httpx.Response) -> int | None:
    """Content-Length is only comparable to what we store when the body is not content-encoded."""
    encoding = response.headers.get("content-encoding", "identity").lower()
    value = response.headers.get("content-length")
    if value is None or not value.strip().isdigit() or encoding not in ("", "identity"):
        return None
    return int(value)


class _open:
    """Context manager: a streamed GET, following redirects by hand so every hop is checked."""

    def __init__(self, http: httpx.Client, url: str, url_check: Callable[[str], Any] | None,
                 timeout: httpx.Timeout, max_redirects: int) -> None:
        self._http, self._url, self._check, self._timeout, self._max = http, url, url_check, timeout, max_redirects
        self._response: httpx.Response | None = None

    def __enter__(self) -> httpx.Response:
        url = self._url
        for _hop in range(self._max + 1):
            if self._check is not None:
                self._check(url)
            request = self._http.build_request("GET", url, timeout=self._timeout)
            try:
                response = self._http.send(request, stream=True, follow_redirects=False)
            except httpx.HTTPError as exc:
                raise PipelineError(ErrorCode.RESULT_DOWNLOAD_FAILED, f"cannot fetch result: {type(exc).__name__}: {exc}",
                                    {"url": url[:500]}) from exc
            check_peer = getattr(self._check, "check_peer", None)
            if check_peer is not None:
                try:
                    check_peer(url, response)
                except BaseException:
                    response.close()
                    raise
            if response.is_redirect and "location" in response.headers:
                response.close()
                url = urljoin(url, response.headers["location"])
                continue
            if not response.is_success:
                response.close()
                raise PipelineError(ErrorCode.RESULT_DOWNLOAD_FAILED, f"result URL answered HTTP {response.status_code}",
                                    {"url": url[:500], "status_code": response.status_code})
            self._response = response
            return response
        raise PipelineError(ErrorCode.RESULT_DOWNLOAD_FAILED, f"more than {self._max} redirects", {"url": self._url[:500]})

    def __exit__(self, *exc: object) -> None:
        if self._response is not None:
            self._response.close()
