"""The webhook signing key: Ed25519, generated on first start and kept in the data dir, published as a JWKS.

fal's scheme (protocol reference §2.4): sign ``request_id\nuser_id\ntimestamp\nsha256hex(body)``, send the hex
signature in X-Fal-Webhook-Signature; receivers verify against every key of the JWKS.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

KEY_FILE = "webhook-signing-key.pem"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class WebhookSigner:
    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self._public_raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self.kid = hashlib.sha256(self._public_raw).hexdigest()[:16]

    @classmethod
    def load_or_create(cls, data_dir: Path) -> WebhookSigner:
        """Load the key from ``data_dir``, creating it (mode 0600) on first start so the JWKS stays stable."""
        path = data_dir / KEY_FILE
        if path.exists():
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} is not an Ed25519 private key")
            return cls(key)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        data_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        os.replace(tmp, path)
        return cls(key)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [{"kty": "OKP", "crv": "Ed25519", "x": _b64url(self._public_raw), "kid": self.kid,
                          "alg": "EdDSA", "use": "sig"}]}

    def headers(self, request_id: str, user_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        """The four X-Fal-Webhook-* headers for ``body`` (signed now unless a timestamp is given)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        message = f"{request_id}\n{user_id}\n{ts}\n{hashlib.sha256(body).hexdigest()}".encode()
        return {
            "X-Fal-Webhook-Request-Id": request_id,
            "X-Fal-Webhook-User-Id": user_id,
            "X-Fal-Webhook-Timestamp": ts,
            "X-Fal-Webhook-Signature": self._key.sign(message).hex(),
        }
