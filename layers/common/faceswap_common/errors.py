"""Error type shared by the whole pipeline.

Every failure that can end up on a job record carries a stable UPPER_SNAKE `code` (what the job record,
the EventBridge event and the tests match on), a human `message`, and an optional JSON-able `detail`.
"""

from __future__ import annotations

from typing import Any


class ErrorCode:
    """The codes used across the package (plain strings, so records stay readable)."""

    CONFIG_INVALID = "CONFIG_INVALID"
    # job spec resolution
    NO_REGISTERED_FACE = "NO_REGISTERED_FACE"
    MANIFEST_NOT_JSON = "MANIFEST_NOT_JSON"
    MANIFEST_INVALID = "MANIFEST_INVALID"
    OBJECT_NOT_FOUND = "OBJECT_NOT_FOUND"
    OBJECT_EMPTY = "OBJECT_EMPTY"
    OBJECT_TOO_LARGE = "OBJECT_TOO_LARGE"
    INPUT_INVALID = "INPUT_INVALID"
    # provider
    PROVIDER_REJECTED = "PROVIDER_REJECTED"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
    SUBMIT_OUTCOME_UNKNOWN = "SUBMIT_OUTCOME_UNKNOWN"
    PROVIDER_FAILED = "PROVIDER_FAILED"
    PROVIDER_BAD_RESPONSE = "PROVIDER_BAD_RESPONSE"
    # webhook
    INVALID_SIGNATURE = "INVALID_SIGNATURE"
    JWKS_UNAVAILABLE = "JWKS_UNAVAILABLE"
    # result copy
    RESULT_INVALID = "RESULT_INVALID"
    RESULT_URL_NOT_ALLOWED = "RESULT_URL_NOT_ALLOWED"
    RESULT_DOWNLOAD_FAILED = "RESULT_DOWNLOAD_FAILED"
    RESULT_EMPTY = "RESULT_EMPTY"
    RESULT_TOO_LARGE = "RESULT_TOO_LARGE"
    RESULT_SIZE_MISMATCH = "RESULT_SIZE_MISMATCH"
    # job store / events
    TRANSITION_REJECTED = "TRANSITION_REJECTED"
    EVENT_PUBLISH_FAILED = "EVENT_PUBLISH_FAILED"


class PipelineError(Exception):
    """A failure with a stable code; `to_dict()` is what goes on the job record."""

    def __init__(self, code: str, message: str, detail: Any = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "detail": self.detail}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"
