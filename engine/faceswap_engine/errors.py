"""Errors the engine reports to its callers.

Every input problem becomes an ``EngineError`` with a stable ``code`` and the field at fault (``loc``), so the
server can answer a fal-style 422 ``detail`` entry and the CLI can print one clear line; nothing else escapes.
"""

from __future__ import annotations


class EngineError(Exception):
    """An input or processing problem that the caller can act on."""

    code = "engine_error"

    def __init__(self, message: str, loc: list[str] | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.loc = loc or []
        if code:
            self.code = code

    def as_detail(self) -> dict[str, object]:
        """The fal/FastAPI validation-error entry for this error."""
        return {"loc": ["body", *self.loc], "msg": self.message, "type": self.code}


class NoFaceInSource(EngineError):
    code = "no_face_in_source"


class UnsupportedFormat(EngineError):
    code = "unsupported_format"


class CorruptMedia(EngineError):
    code = "corrupt_media"


class MediaTooLarge(EngineError):
    code = "media_too_large"


class FetchFailed(EngineError):
    code = "fetch_failed"


class InvalidDataUri(EngineError):
    code = "invalid_data_uri"


class Cancelled(EngineError):
    code = "cancelled"
