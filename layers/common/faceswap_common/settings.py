"""Configuration of every function, read from the environment once and validated at cold start.

A misconfigured function must fail loudly at once, naming the variable, instead of on the first job.
Variables that only some functions need are optional here; each function states what it needs with
`Settings.from_env(require=[...])` or `settings.need("WEBHOOK_URL")`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .errors import ErrorCode, PipelineError

MiB = 1024 * 1024
GiB = 1024 * MiB


class ConfigError(PipelineError):
    def __init__(self, message: str, detail: Any = None) -> None:
        super().__init__(ErrorCode.CONFIG_INVALID, message, detail)


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _split_hosts(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(h.strip().lower() for h in value.split(",") if h.strip())
    return value


OptionalStr = Annotated[str | None, BeforeValidator(_blank_to_none)]


class Settings(BaseModel):
    """All variables of contracts.md. Field aliases are the environment variable names."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="ignore")

    media_bucket: str = Field(alias="MEDIA_BUCKET", min_length=3)
    jobs_table: str = Field(alias="JOBS_TABLE", min_length=1)
    idempotency_table: OptionalStr = Field(default=None, alias="IDEMPOTENCY_TABLE")
    provider_base_url: str = Field(default="https://queue.fal.run", alias="PROVIDER_BASE_URL")
    provider_app_id: str = Field(default="half-moon-ai/ai-face-swap", alias="PROVIDER_APP_ID", min_length=3)
    fal_key_secret_arn: OptionalStr = Field(default=None, alias="FAL_KEY_SECRET_ARN")
    jwks_url: str = Field(default="https://rest.alpha.fal.ai/.well-known/jwks.json", alias="JWKS_URL")
    webhook_url: OptionalStr = Field(default=None, alias="WEBHOOK_URL")
    allowed_result_hosts: Annotated[tuple[str, ...], BeforeValidator(_split_hosts)] = Field(
        default=("*.fal.media", "fal.media", "storage.googleapis.com"), alias="ALLOWED_RESULT_HOSTS"
    )
    presign_expiry_seconds: int = Field(default=3600, alias="PRESIGN_EXPIRY_SECONDS", ge=60, le=7 * 24 * 3600)
    max_image_bytes: int = Field(default=50 * MiB, alias="MAX_IMAGE_BYTES", gt=0)
    max_video_bytes: int = Field(default=2 * GiB, alias="MAX_VIDEO_BYTES", gt=0)
    max_manifest_bytes: int = Field(default=256 * 1024, alias="MAX_MANIFEST_BYTES", gt=0)
    max_result_bytes: int = Field(default=10 * GiB, alias="MAX_RESULT_BYTES", gt=0)
    result_copy_queue_url: OptionalStr = Field(default=None, alias="RESULT_COPY_QUEUE_URL")
    event_bus_name: str = Field(default="default", alias="EVENT_BUS_NAME", min_length=1)
    job_ttl_days: int = Field(default=30, alias="JOB_TTL_DAYS", ge=1, le=3650)
    powertools_service_name: str = Field(default="faceswap", alias="POWERTOOLS_SERVICE_NAME")
    powertools_log_level: str = Field(default="INFO", alias="POWERTOOLS_LOG_LEVEL")
    powertools_metrics_namespace: str = Field(default="FaceSwapPipeline", alias="POWERTOOLS_METRICS_NAMESPACE")
    aws_endpoint_url: OptionalStr = Field(default=None, alias="AWS_ENDPOINT_URL")

    @field_validator("provider_base_url", "jwks_url", "webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https:// or http://")
        return value

    @field_validator("provider_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, require: Iterable[str] = ()) -> Settings:
        """Build from `env` (default os.environ); ConfigError names every missing or invalid variable."""
        env = os.environ if env is None else env
        names = {f.alias for f in cls.model_fields.values() if f.alias}
        data = {k: v for k, v in env.items() if k in names}
        try:
            settings = cls.model_validate(data)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                var = str(err["loc"][0]) if err["loc"] else "?"
                if err["type"] == "missing":
                    problems.append(f"missing environment variable {var}")
                else:
                    problems.append(f"invalid environment variable {var}: {err['msg']}")
            raise ConfigError("; ".join(problems), detail=problems) from None
        for var in require:
            settings.need(var)
        return settings

    def need(self, var: str) -> str:
        """Value of an optional variable this function requires (by env name); ConfigError if unset."""
        for name, field in type(self).model_fields.items():
            if field.alias == var:
                value = getattr(self, name)
                if value is None or value == "":
                    raise ConfigError(f"missing environment variable {var}", detail=[var])
                return str(value)
        raise KeyError(var)

    def webhook_url_for(self, job_id: str) -> str:
        """f"{WEBHOOK_URL}?job_id={job_id}" (contracts.md); keeps an existing query string."""
        base = self.need("WEBHOOK_URL")
        return f"{base}{'&' if '?' in base else '?'}job_id={job_id}"


def fal_key_from_secret(raw: str) -> str:
    """The secret is `key_id:secret` as a plain string or JSON {"FAL_KEY": "..."}; never logged."""
    text = raw.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise ConfigError("FAL key secret is neither key_id:secret nor JSON") from None
        value = data.get("FAL_KEY") if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise ConfigError('FAL key secret JSON has no string "FAL_KEY"')
        text = value.strip()
    if ":" not in text or text.startswith(":") or text.endswith(":"):
        raise ConfigError("FAL key must look like key_id:secret")
    return text
