"""Fetch a job's inputs: http(s) URLs (streamed, size-limited, with connect/read/total timeouts) and data URIs.

Every failure is an EngineError naming the input field (``loc``), so the server answers a 422 that says which URL
failed and why, and the worker moves on to the next job.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote_to_bytes, urlsplit

import httpx
from pydantic import BaseModel, Field

from .errors import FetchFailed, InvalidDataUri, MediaTooLarge

_CHUNK = 1 << 20


class FetchLimits(BaseModel):
    """Limits for one fetched input; ``allowed_hosts`` empty means any host (host or host:port, ``*.`` wildcards)."""

    max_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    total_timeout_s: float = Field(default=600.0, gt=0)
    allowed_hosts: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Fetched:
    """Bytes in memory (``data``) or a file on disk (``path``); ``content_type`` as the source declared it."""

    size: int
    content_type: str | None
    data: bytes | None = None
    path: Path | None = None

    @property
    def head(self) -> bytes:
        if self.data is not None:
            return self.data[:512]
        assert self.path is not None
        with self.path.open("rb") as fh:
            return fh.read(512)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB"


def host_allowed(url: str, allowed: list[str]) -> bool:
    if not allowed:
        return True
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    with_port = f"{host}:{parts.port}" if parts.port else host
    for pattern in allowed:
        pattern = pattern.strip().lower()
        if pattern and (fnmatch.fnmatchcase(with_port, pattern) or fnmatch.fnmatchcase(host, pattern)):
            return True
    return False


def decode_data_uri(uri: str, loc: list[str], max_bytes: int) -> Fetched:
    """``data:<mime>;base64,<data>`` only: a non-base64 data URI is refused, not guessed at."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.lower().startswith("data:"):
        raise InvalidDataUri("data URI must look like data:<mime>;base64,<data>", loc)
    params = header[5:].split(";")
    if "base64" not in (p.strip().lower() for p in params[1:]):
        raise InvalidDataUri("data URI must be base64-encoded (data:<mime>;base64,<data>)", loc)
    if len(payload) * 3 // 4 > max_bytes:
        raise MediaTooLarge(f"data URI is larger than {_mb(max_bytes)}", loc)
    try:
        data = base64.b64decode(unquote_to_bytes(payload.strip()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidDataUri(f"data URI is not valid base64: {exc}", loc) from exc
    if not data:
        raise InvalidDataUri("data URI holds no data", loc)
    return Fetched(size=len(data), content_type=params[0].strip().lower() or None, data=data)


def fetch(
    url: str,
    loc: list[str],
    limits: FetchLimits,
    *,
    dest: Path | None = None,
    client: httpx.Client | None = None,
) -> Fetched:
    """Fetch ``url`` into memory, or stream it to ``dest`` (for videos) so memory stays flat."""
    if url[:5].lower() == "data:":
        fetched = decode_data_uri(url, loc, limits.max_bytes)
        if dest is not None:
            dest.write_bytes(fetched.data or b"")
            return Fetched(size=fetched.size, content_type=fetched.content_type, path=dest)
        return fetched
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchFailed(f"unsupported URL scheme {scheme!r}; use http(s) or a data URI", loc)
    if not host_allowed(url, limits.allowed_hosts):
        raise FetchFailed(f"host of {_short(url)} is not in the allowed fetch hosts", loc)
    own = client is None
    http = client or _client(limits)
    try:
        return _download(http, url, loc, limits, dest)
    finally:
        if own:
            http.close()


def _client(limits: FetchLimits) -> httpx.Client:
    timeout = httpx.Timeout(limits.read_timeout_s, connect=limits.connect_timeout_s)

    def check_redirect(request: httpx.Request) -> None:
        if not host_allowed(str(request.url), limits.allowed_hosts):
            raise httpx.UnsupportedProtocol(f"redirect to a host that is not allowed: {request.url.host}")

    return httpx.Client(
        timeout=timeout,
        follow_redirects=True,
        max_redirects=5,
        event_hooks={"request": [check_redirect]},
        headers={"User-Agent": "faceswap-engine/0.1"},
    )


def _short(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path[:80]}"


def _download(http: httpx.Client, url: str, loc: list[str], limits: FetchLimits, dest: Path | None) -> Fetched:
    deadline = time.monotonic() + limits.total_timeout_s
    chunks: list[bytes] = []
    size = 0
    fh = dest.open("wb") if dest is not None else None
    try:
        with http.stream("GET", url) as response:
            if response.status_code >= 400:
                raise FetchFailed(f"fetching {_short(url)} failed: HTTP {response.status_code}", loc)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limits.max_bytes:
                raise MediaTooLarge(f"{_short(url)} is {_mb(int(declared))}; the limit is {_mb(limits.max_bytes)}", loc)
            for chunk in response.iter_bytes(_CHUNK):
                size += len(chunk)
                if size > limits.max_bytes:
                    raise MediaTooLarge(f"{_short(url)} is larger than the limit of {_mb(limits.max_bytes)}", loc)
                if time.monotonic() > deadline:
                    raise FetchFailed(f"fetching {_short(url)} took longer than {limits.total_timeout_s:g} s", loc)
                if fh is not None:
                    fh.write(chunk)
                else:
                    chunks.append(chunk)
            content_type = response.headers.get("content-type")
    except httpx.TimeoutException as exc:
        raise FetchFailed(f"fetching {_short(url)} timed out ({type(exc).__name__})", loc) from exc
    except httpx.HTTPError as exc:
        raise FetchFailed(f"fetching {_short(url)} failed: {exc}", loc) from exc
    finally:
        if fh is not None:
            fh.close()
    if size == 0:
        raise FetchFailed(f"{_short(url)} returned an empty body", loc)
    if dest is not None:
        return Fetched(size=size, content_type=content_type, path=dest)
    return Fetched(size=size, content_type=content_type, data=b"".join(chunks))
