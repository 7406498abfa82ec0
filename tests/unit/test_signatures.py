"""Webhook signatures: Ed25519 over the four-line message, JWKS caching, rotation and rate-limited refetch."""

from __future__ import annotations

import json

import httpx
import pytest

from faceswap_common.signatures import InvalidSignature, JwksCache, JwksUnavailable, WebhookVerifier

from .support import Signer

NOW = 1_760_000_000
BODY = json.dumps({"error": None, "payload": {"video": {"url": "https://v3.fal.media/x.mp4"}}, "request_id": "r1",
                   "status": "OK"}, sort_keys=True).encode()


class JwksServer:
    """MockTransport serving a mutable key set and counting fetches."""

    def __init__(self, *signers: Signer) -> None:
        self.signers = list(signers)
        self.fetches = 0
        self.fail = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        if self.fail:
            return httpx.Response(503)
        return httpx.Response(200, json={"keys": [s.jwk() for s in self.signers]})


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make(server: JwksServer, clock: Clock | None = None, ttl: float = 86400) -> tuple[WebhookVerifier, JwksCache, Clock]:
    clock = clock or Clock(NOW)
    cache = JwksCache("https://jwks.example.test/.well-known/jwks.json", httpx.Client(transport=httpx.MockTransport(server)),
                      ttl_seconds=ttl, min_refresh_interval=60, clock=clock)
    return WebhookVerifier(cache, tolerance_seconds=300, clock=clock), cache, clock


def test_valid_signature_accepted_and_keys_cached() -> None:
    signer = Signer()
    server = JwksServer(signer)
    verifier, _, _ = make(server)
    verified = verifier.verify(signer.headers("r1", "u1", NOW, BODY), BODY)
    assert (verified.request_id, verified.user_id, verified.timestamp) == ("r1", "u1", NOW)
    verifier.verify(signer.headers("r2", "u1", NOW - 299, BODY), BODY)
    assert server.fetches == 1


def test_lower_case_headers_as_function_urls_deliver_them() -> None:
    signer = Signer()
    verifier, _, _ = make(JwksServer(signer))
    headers = {k.lower(): v for k, v in signer.headers("r1", "u1", NOW, BODY).items()}
    assert verifier.verify(headers, BODY).request_id == "r1"


def test_any_key_of_the_set_may_match() -> None:
    old, current, other = Signer("old"), Signer("new"), Signer("x")
    verifier, _, _ = make(JwksServer(old, current))
    verifier.verify(current.headers("r", "u", NOW, BODY), BODY)
    verifier.verify(old.headers("r", "u", NOW, BODY), BODY)
    with pytest.raises(InvalidSignature, match="does not match"):
        verifier.verify(other.headers("r", "u", NOW, BODY), BODY)


@pytest.mark.parametrize(
    "tamper",
    ["body", "request_id", "user_id", "timestamp", "signature_flip", "signature_short", "signature_not_hex"],
)
def test_tampering_rejected(tamper: str) -> None:
    signer = Signer()
    verifier, _, _ = make(JwksServer(signer))
    headers = signer.headers("r1", "u1", NOW, BODY)
    body = BODY
    if tamper == "body":
        body = BODY.replace(b'"OK"', b'"ERROR"')
    elif tamper == "request_id":
        headers["X-Fal-Webhook-Request-Id"] = "r2"
    elif tamper == "user_id":
        headers["X-Fal-Webhook-User-Id"] = "u2"
    elif tamper == "timestamp":
        headers["X-Fal-Webhook-Timestamp"] = str(NOW + 1)
    elif tamper == "signature_flip":
        sig = headers["X-Fal-Webhook-Signature"]
        headers["X-Fal-Webhook-Signature"] = ("0" if sig[0] != "0" else "1") + sig[1:]
    elif tamper == "signature_short":
        headers["X-Fal-Webhook-Signature"] = headers["X-Fal-Webhook-Signature"][:-2]
    elif tamper == "signature_not_hex":
        headers["X-Fal-Webhook-Signature"] = "zz" * 64
    with pytest.raises(InvalidSignature) as info:
        verifier.verify(headers, body)
    assert info.value.code == "INVALID_SIGNATURE"


@pytest.mark.parametrize(
    "header",
    ["X-Fal-Webhook-Request-Id", "X-Fal-Webhook-User-Id", "X-Fal-Webhook-Timestamp", "X-Fal-Webhook-Signature"],
)
def test_missing_header_named(header: str) -> None:
    signer = Signer()
    server = JwksServer(signer)
    verifier, _, _ = make(server)
    headers = signer.headers("r1", "u1", NOW, BODY)
    del headers[header]
    with pytest.raises(InvalidSignature) as info:
        verifier.verify(headers, BODY)
    assert info.value.reason == f"missing header {header}"
    assert server.fetches == 0  # no key fetch for a request that cannot be valid


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (300, True), (-301, False), (301, False), (-86400, False)])
def test_timestamp_tolerance(offset: int, ok: bool) -> None:
    signer = Signer()
    server = JwksServer(signer)
    verifier, _, _ = make(server)
    headers = signer.headers("r1", "u1", NOW + offset, BODY)
    if ok:
        verifier.verify(headers, BODY)
    else:
        with pytest.raises(InvalidSignature, match="stale timestamp"):
            verifier.verify(headers, BODY)
        assert server.fetches == 0


def test_non_numeric_timestamp() -> None:
    signer = Signer()
    verifier, _, _ = make(JwksServer(signer))
    headers = signer.headers("r1", "u1", NOW, BODY)
    headers["X-Fal-Webhook-Timestamp"] = "2026-01-01T00:00:00Z"
    with pytest.raises(InvalidSignature, match="bad timestamp"):
        verifier.verify(headers, BODY)


def test_key_rotation_triggers_exactly_one_refetch() -> None:
    old, new = Signer("old"), Signer("new")
    server = JwksServer(old)
    verifier, _, clock = make(server)
    verifier.verify(old.headers("r", "u", NOW, BODY), BODY)
    assert server.fetches == 1
    clock.now += 120
    server.signers = [old, new]  # the provider rotates: our cache does not know `new` yet
    verifier.verify(new.headers("r", "u", int(clock.now), BODY), BODY)
    assert server.fetches == 2
    verifier.verify(new.headers("r", "u", int(clock.now), BODY), BODY)
    verifier.verify(old.headers("r", "u", int(clock.now), BODY), BODY)
    assert server.fetches == 2


def test_forgeries_cannot_hammer_the_jwks_url() -> None:
    signer, forger = Signer(), Signer("forged")
    server = JwksServer(signer)
    verifier, _, clock = make(server)
    for _ in range(50):
        with pytest.raises(InvalidSignature):
            verifier.verify(forger.headers("r", "u", int(clock.now), BODY), BODY)
    assert server.fetches == 1  # the load itself counts: no refetch within min_refresh_interval
    clock.now += 61
    for _ in range(50):
        with pytest.raises(InvalidSignature):
            verifier.verify(forger.headers("r", "u", int(clock.now), BODY), BODY)
    assert server.fetches == 2  # at most one refetch per interval, however many forgeries


def test_ttl_expiry_refetches_and_failure_keeps_stale_keys() -> None:
    signer = Signer()
    server = JwksServer(signer)
    verifier, _, clock = make(server, ttl=3600)
    verifier.verify(signer.headers("r", "u", NOW, BODY), BODY)
    clock.now += 3600
    server.fail = True
    for _ in range(20):
        verifier.verify(signer.headers("r", "u", int(clock.now), BODY), BODY)  # stale keys still used
    assert server.fetches == 2  # one failed refetch per interval, not one per request
    clock.now += 61
    server.fail = False
    verifier.verify(signer.headers("r", "u", int(clock.now), BODY), BODY)
    assert server.fetches == 3


def test_no_keys_at_all_is_unavailable_not_invalid() -> None:
    signer = Signer()
    server = JwksServer(signer)
    server.fail = True
    verifier, _, _ = make(server)
    with pytest.raises(JwksUnavailable):
        verifier.verify(signer.headers("r", "u", NOW, BODY), BODY)
    with pytest.raises(JwksUnavailable):  # rate-limited: no second fetch right away
        verifier.verify(signer.headers("r", "u", NOW, BODY), BODY)
    assert server.fetches == 1


def test_non_ed25519_keys_skipped() -> None:
    signer = Signer()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": [{"kty": "RSA", "n": "x", "e": "AQAB"},
                                                  {"kty": "OKP", "crv": "Ed25519", "x": "!!"}, signer.jwk()]})

    cache = JwksCache("https://j.example/jwks", httpx.Client(transport=httpx.MockTransport(handler)))
    assert len(cache.keys()) == 1
    WebhookVerifier(cache, clock=lambda: NOW).verify(signer.headers("r", "u", NOW, BODY), BODY)
