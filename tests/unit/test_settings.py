"""Settings from the environment: defaults, required variables named in the error, the FAL key secret."""

from __future__ import annotations

import pytest

from faceswap_common.settings import ConfigError, GiB, MiB, Settings, fal_key_from_secret

BASE = {"MEDIA_BUCKET": "media-bkt", "JOBS_TABLE": "jobs"}


def test_defaults() -> None:
    s = Settings.from_env(BASE)
    assert s.provider_base_url == "https://queue.fal.run"
    assert s.provider_app_id == "half-moon-ai/ai-face-swap"
    assert s.jwks_url == "https://rest.alpha.fal.ai/.well-known/jwks.json"
    assert s.allowed_result_hosts == ("*.fal.media", "fal.media", "storage.googleapis.com")
    assert s.presign_expiry_seconds == 3600
    assert (s.max_image_bytes, s.max_video_bytes) == (50 * MiB, 2 * GiB)
    assert (s.max_manifest_bytes, s.max_result_bytes) == (256 * 1024, 10 * GiB)
    assert s.event_bus_name == "default" and s.job_ttl_days == 30
    assert s.powertools_service_name == "faceswap" and s.powertools_log_level == "INFO"
    assert s.powertools_metrics_namespace == "FaceSwapPipeline"
    assert s.aws_endpoint_url is None and s.webhook_url is None


def test_all_variables_read() -> None:
    env = {
        **BASE,
        "IDEMPOTENCY_TABLE": "idem",
        "PROVIDER_BASE_URL": "http://127.0.0.1:8300/",
        "PROVIDER_APP_ID": "me/app",
        "FAL_KEY_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:fal",
        "JWKS_URL": "http://127.0.0.1:8300/.well-known/jwks.json",
        "WEBHOOK_URL": "https://abc.lambda-url.us-east-1.on.aws/",
        "ALLOWED_RESULT_HOSTS": " *.fal.media , 127.0.0.1:8300 ,",
        "PRESIGN_EXPIRY_SECONDS": "900",
        "MAX_IMAGE_BYTES": "10",
        "MAX_VIDEO_BYTES": "20",
        "MAX_MANIFEST_BYTES": "30",
        "MAX_RESULT_BYTES": "40",
        "RESULT_COPY_QUEUE_URL": "https://sqs/q",
        "EVENT_BUS_NAME": "bus",
        "JOB_TTL_DAYS": "7",
        "AWS_ENDPOINT_URL": "",
        "UNRELATED": "x",
    }
    s = Settings.from_env(env, require=["WEBHOOK_URL", "IDEMPOTENCY_TABLE", "FAL_KEY_SECRET_ARN", "RESULT_COPY_QUEUE_URL"])
    assert s.provider_base_url == "http://127.0.0.1:8300"
    assert s.allowed_result_hosts == ("*.fal.media", "127.0.0.1:8300")
    assert (s.max_image_bytes, s.max_video_bytes, s.max_manifest_bytes, s.max_result_bytes) == (10, 20, 30, 40)
    assert s.presign_expiry_seconds == 900 and s.job_ttl_days == 7 and s.event_bus_name == "bus"
    assert s.aws_endpoint_url is None
    assert s.need("IDEMPOTENCY_TABLE") == "idem"
    assert s.webhook_url_for("j1") == "https://abc.lambda-url.us-east-1.on.aws/?job_id=j1"


@pytest.mark.parametrize("missing", ["MEDIA_BUCKET", "JOBS_TABLE"])
def test_missing_required_var_is_named(missing: str) -> None:
    env = {k: v for k, v in BASE.items() if k != missing}
    with pytest.raises(ConfigError) as info:
        Settings.from_env(env)
    assert info.value.code == "CONFIG_INVALID"
    assert f"missing environment variable {missing}" in info.value.message


def test_required_for_this_function() -> None:
    with pytest.raises(ConfigError, match="missing environment variable WEBHOOK_URL"):
        Settings.from_env(BASE, require=["WEBHOOK_URL"])
    with pytest.raises(ConfigError, match="RESULT_COPY_QUEUE_URL"):
        Settings.from_env({**BASE, "RESULT_COPY_QUEUE_URL": "  "}).need("RESULT_COPY_QUEUE_URL")


@pytest.mark.parametrize(
    ("var", "value"),
    [("MAX_IMAGE_BYTES", "lots"), ("PRESIGN_EXPIRY_SECONDS", "5"), ("PROVIDER_BASE_URL", "queue.fal.run"),
     ("JOB_TTL_DAYS", "0"), ("WEBHOOK_URL", "ftp://x")],
)
def test_invalid_var_is_named(var: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"invalid environment variable {var}"):
        Settings.from_env({**BASE, var: value})


def test_reads_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_BUCKET", "from-env")
    monkeypatch.setenv("JOBS_TABLE", "t")
    assert Settings.from_env().media_bucket == "from-env"


def test_fal_key_secret_forms() -> None:
    assert fal_key_from_secret("id:secret\n") == "id:secret"
    assert fal_key_from_secret('{"FAL_KEY": "id:secret"}') == "id:secret"
    for bad in ["nocolon-SECRETVALUE", '{"OTHER": "a:SECRETVALUE"}', "{not json SECRETVALUE", ":SECRETVALUE"]:
        with pytest.raises(ConfigError) as info:
            fal_key_from_secret(bad)
        assert "SECRETVALUE" not in str(info.value)  # the secret is never echoed
