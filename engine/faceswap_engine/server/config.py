"""Server settings: one pydantic model shared by the CLI, the tests and the local stack."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator


class ServerConfig(BaseModel):
    """How the engine server runs. ``keys`` empty disables auth (a warning is logged); ``public_url`` empty means
    URLs are built from the request's own host (fine on loopback)."""

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = Field(default=8300, ge=0, le=65535)
    keys: list[str] = Field(default_factory=list, description="accepted FAL_KEY values, 'key_id:secret'")
    public_url: str | None = None
    app_id: str = "half-moon-ai/ai-face-swap"
    workers: int = Field(default=1, ge=1, le=16)
    allowed_fetch_hosts: list[str] = Field(default_factory=list, description="empty = any host")
    max_image_bytes: int = 50 * 1024 * 1024
    max_video_bytes: int = 2 * 1024 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_request_bytes: int = Field(default=256 * 1024 * 1024, gt=0, description="submit body (data URIs included)")
    fetch_connect_timeout_s: float = 10.0
    fetch_read_timeout_s: float = 30.0
    fetch_total_timeout_s: float = 900.0
    max_duration_s: float = 25 * 60.0
    max_fps: int = 25
    weights_dir: Path | None = None
    webhook_max_attempts: int = Field(default=10, ge=1)
    webhook_backoff_s: float = Field(default=2.0, ge=0)
    webhook_max_backoff_s: float = Field(default=600.0, ge=0)
    webhook_timeout_s: float = 15.0
    retention_s: float = Field(default=24 * 3600.0, gt=0, description="completed requests and files are kept this long")

    @field_validator("keys")
    @classmethod
    def _keys_have_colon(cls, keys: list[str]) -> list[str]:
        for key in keys:
            key_id, sep, secret = key.partition(":")
            if not sep or not key_id or not secret:
                raise ValueError("each key must look like key_id:secret")
        return keys

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, url: str | None) -> str | None:
        return url.rstrip("/") if url else None
