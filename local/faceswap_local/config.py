"""Where the local stack listens and what it created: the flags/env it starts from and ``stack.json``.

``stack.json`` (in the state directory, default ``.local-stack/``) is how the CLI, the demo and the tests find a
running stack: endpoints, resource names and the secret holding the engine key (the key itself is read from
Secrets Manager, as the functions do).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, Field

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".local-stack"
STATE_FILE = "stack.json"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


class StackConfig(BaseModel):
    """How to start the local stack; every port may be 0 (any free port)."""

    host: str = Field(default_factory=lambda: os.environ.get("FACESWAP_LOCAL_HOST", "127.0.0.1"))
    moto_port: int = Field(default_factory=lambda: _env_int("FACESWAP_LOCAL_MOTO_PORT", 5050), ge=0, le=65535)
    engine_port: int = Field(default_factory=lambda: _env_int("FACESWAP_LOCAL_ENGINE_PORT", 5051), ge=0, le=65535)
    gateway_port: int = Field(default_factory=lambda: _env_int("FACESWAP_LOCAL_WEBHOOK_PORT", 5052), ge=0, le=65535)
    state_dir: Path = Field(default_factory=lambda: Path(os.environ.get("FACESWAP_LOCAL_DIR", DEFAULT_STATE_DIR)))
    region: str = "us-east-1"
    engine_workers: int = Field(default_factory=lambda: _env_int("FACESWAP_LOCAL_ENGINE_WORKERS", 1), ge=1)
    reconcile_seconds: float = Field(default_factory=lambda: float(_env_int("FACESWAP_LOCAL_RECONCILE_SECONDS", 60)), gt=0)
    engine_weights: Path | None = None
    console: bool = True
    verbose: bool = False
    engine_start_timeout: float = 120.0


class StackInfo(BaseModel):
    """What a running local stack offers; written to ``<state_dir>/stack.json`` once everything answers."""

    pid: int
    region: str
    endpoint_url: str
    engine_url: str
    webhook_url: str
    provider_app_id: str = "half-moon-ai/ai-face-swap"
    bucket: str
    jobs_table: str
    idempotency_table: str
    result_copy_queue_url: str
    result_copy_dlq_url: str
    submit_failure_queue_url: str
    s3_event_queue_url: str
    fal_key_secret_arn: str
    jwks_url: str
    log_file: str
    started_at: float
    functions: list[str] = []

    def save(self, state_dir: Path) -> Path:
        path = state_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.model_dump(), indent=2))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, state_dir: Path | None = None) -> StackInfo:
        """The running stack's info; FileNotFoundError with a hint when no stack was started there."""
        path = (state_dir or Path(os.environ.get("FACESWAP_LOCAL_DIR", DEFAULT_STATE_DIR))) / STATE_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: start the local stack first (`make up`)")
        return cls.model_validate_json(path.read_text())
