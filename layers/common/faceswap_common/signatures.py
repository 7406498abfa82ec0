"""Verification of fal's signed webhooks (Ed25519 over a four-line message, keys from a JWKS).

The Function URL is public; the signature is the only authentication. Keys are cached (24 h by
default) and refetched when no key verifies a signature, since the provider may have rotated keys; that
refetch is rate-limited so forged requests cannot turn us into a JWKS hammer.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ErrorCode, PipelineError

if TYPE_CHECKING:  # httpx is imported on the first key fetch, not at cold start (~60 ms)
    import httpx

HEADER_REQUEST_ID = "X-Fal-Webhook-Request-Id"
HEADER_USER_ID = "X-Fal-Webhook-User-Id"
HEADER_TIMESTAMP = "X-Fal-Webhook-Timestamp"
HEADER_SIGNATURE = "X-Fal-Webhook-Signature"
MAX_JWKS_BYTES = 256 * 1024


class InvalidSignature(PipelineError):
    """Answer 401 and write nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(ErrorCode.INVALID_SIGNATURE, reason)
        self.reason = reason


class JwksUnavailable(PipelineError):
    """No keys could be loaded at all: answer 5xx so the provider retries later (not a 401)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.JWKS_UNAVAILABLE, message)


class Jwk(BaseModel):
    model_config = ConfigDict(extra="allow")

    kty: str
    crv: str | None = None
    x: str | None = None
    kid: str | None = None


class Jwks(BaseModel):
    model_config = ConfigDict(extra="allow")

    keys: list[Jwk]


def public_key_from_jwk(jwk: Jwk) -> Ed25519PublicKey | None:
    """OKP/Ed25519 entries only; anything else is skipped."""
    if jwk.kty != "OKP" or jwk.crv != "Ed25519" or not jwk.x:
        return None
    try:
        raw = base64.urlsafe_b64decode(jwk.x + "=" * (-len(jwk.x) % 4))
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        return None


class JwksCache:
    """Fetches and caches the provider's signing keys."""

    def __init__(
        self,
        url: str,
        http_client: httpx.Client,
        ttl_seconds: float = 86400,
        *,
        min_refresh_interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        timeout: httpx.Timeout | None = None,  # default: 5 s, 3 s to connect
    ) -> None:
        self._url = url
        self._http = http_client
        self._ttl = ttl_seconds
        self._min_refresh = min_refresh_interval
        self._clock = clock
        self._timeout = timeout
        self._keys: list[Ed25519PublicKey] = []
        self._fetched_at: float | None = None
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def keys(self) -> list[Ed25519PublicKey]:
        """Cached keys, refetched after the TTL (a failed fetch keeps the stale set; retried per interval)."""
        now = self._clock()
        stale = self._fetched_at is None or now - self._fetched_at >= self._ttl
        if stale and self._may_fetch(now):
            self._fetch(now)
        if not self._keys:
            raise JwksUnavailable("webhook signing keys unavailable")
        return list(self._keys)

    def refresh(self) -> bool:
        """Refetch now unless one was attempted within min_refresh_interval; True if new keys were loaded."""
        now = self._clock()
        return self._may_fetch(now) and self._fetch(now)

    def _may_fetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self._min_refresh

    def _fetch(self, now: float) -> bool:
        import httpx

        with self._lock:
            self._last_attempt = now
            self.fetch_count += 1
            try:
                timeout = self._timeout or httpx.Timeout(5.0, connect=3.0)
                response = self._http.get(self._url, timeout=timeout, headers={"Accept": "application/json"})
                response.raise_for_status()
                if len(response.content) > MAX_JWKS_BYTES:
                    raise ValueError("JWKS too large")
                jwks = Jwks.model_validate_json(response.content)
            except (httpx.HTTPError, ValidationError, ValueError):
                return False
            keys = [k for k in (public_key_from_jwk(j) for j in jwks.keys) if k is not None]
            if not keys:
                return False
            self._keys = keys
            self._fetched_at = now
            return True


class VerifiedWebhook(BaseModel):
    model_config = ConfigDict(frozen=True)

    request_id: str
    user_id: str
    timestamp: int


def signed_message(request_id: str, user_id: str, timestamp: str, raw_body: bytes) -> bytes:
    """f"{request_id}\\n{user_id}\\n{timestamp}\\n{sha256_hex(raw_body)}" as UTF-8."""
    digest = hashlib.sha256(raw_body).hexdigest()
    return f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        lower = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lower), None)
    if value is None or not str(value).strip():
        raise InvalidSignature(f"missing header {name}")
    return str(value).strip()


class WebhookVerifier:
    """verify(headers, raw_body) → VerifiedWebhook, or InvalidSignature(reason)."""

    def __init__(self, jwks: JwksCache, tolerance_seconds: int = 300, clock: Callable[[], float] = time.time) -> None:
        self._jwks = jwks
        self._tolerance = tolerance_seconds
        self._clock = clock

    def verify(self, headers: Mapping[str, str], raw_body: bytes) -> VerifiedWebhook:
        request_id = _header(headers, HEADER_REQUEST_ID)
        user_id = _header(headers, HEADER_USER_ID)
        timestamp = _header(headers, HEADER_TIMESTAMP)
        signature_hex = _header(headers, HEADER_SIGNATURE)
        if not timestamp.isdigit() or len(timestamp) > 12:
            raise InvalidSignature("bad timestamp")
        if abs(self._clock() - int(timestamp)) > self._tolerance:
            raise InvalidSignature("stale timestamp")
        try:
            signature = bytes.fromhex(signature_hex)
        except ValueError:
            raise InvalidSignature("signature is not hex") from None
        if len(signature) != 64:
            raise InvalidSignature("signature has the wrong length")
        message = signed_message(request_id, user_id, timestamp, raw_body)
        if self._matches(self._jwks.keys(), signature, message):
            return VerifiedWebhook(request_id=request_id, user_id=user_id, timestamp=int(timestamp))
        # Maybe the keys rotated: refetch (rate-limited) and try once more.
        if self._jwks.refresh() and self._matches(self._jwks.keys(), signature, message):
            return VerifiedWebhook(request_id=request_id, user_id=user_id, timestamp=int(timestamp))
        raise InvalidSignature("signature does not match any key")

    @staticmethod
    def _matches(keys: list[Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
        for key in keys:
            try:
                key.verify(signature, message)
                return True
            except _CryptoInvalidSignature:
                continue
        return False
