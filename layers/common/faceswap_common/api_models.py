"""The model API's schema (seed: half-moon-ai/ai-face-swap) and fal's queue protocol messages.

The pipeline builds its provider requests with these models and the offline engine's server validates
its incoming requests with the very same ones, so validation errors name the field (`loc`) the way
fal's 422 `detail` does.

Every model is declared with `defer_build=True`: pydantic builds a model's validator on its first use instead
of at import, so a handler's cold start pays only for the models it touches (~70 ms otherwise, all of them).
"""

from __future__ import annotations

import base64
import binascii
import re
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .media_types import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    MediaKind,
    kind_of_mime,
    url_path_extension,
)

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?),(?P<data>.*)$", re.S)


def _allowed(kind: MediaKind) -> str:
    return ", ".join(sorted(VIDEO_EXTENSIONS if kind == "video" else IMAGE_EXTENSIONS))


def check_media_url(value: str, kind: MediaKind) -> str:
    """Accept an http(s) URL whose path extension (if any) is allowed, or a data URI of that kind."""
    value = value.strip()
    if not value:
        raise PydanticCustomError("url_empty", "URL must not be empty")
    if value[:5].lower() == "data:":
        match = _DATA_URI.match(value)
        if match is None or not match.group("mime"):
            raise PydanticCustomError("data_uri_invalid", "data URI must look like data:<mime>;base64,<data>")
        mime = match.group("mime").lower()
        if kind_of_mime(mime) != kind:
            raise PydanticCustomError(
                "data_uri_mime", "data URI type {mime} is not an allowed {kind} type", {"mime": mime, "kind": kind}
            )
        if ";base64" in match.group("params").lower():
            try:
                base64.b64decode(match.group("data"), validate=True)
            except (binascii.Error, ValueError):
                raise PydanticCustomError("data_uri_base64", "data URI is not valid base64") from None
        return value
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https") or not rest or rest[0] in "/?#":
        raise PydanticCustomError("url_scheme", "must be an http(s) URL or a data URI")
    ext = url_path_extension(value)
    allowed = VIDEO_EXTENSIONS if kind == "video" else IMAGE_EXTENSIONS
    if ext is not None and ext not in allowed:
        raise PydanticCustomError(
            "url_extension",
            "file extension '{ext}' is not allowed; allowed: {allowed}",
            {"ext": ext, "allowed": _allowed(kind)},
        )
    return value


ImageUrl = Annotated[str, AfterValidator(lambda v: check_media_url(v, "image"))]
VideoUrl = Annotated[str, AfterValidator(lambda v: check_media_url(v, "video"))]


class Gender(str, Enum):
    FEMALE = "female"
    MALE = "male"


class _Input(BaseModel):
    """Inputs ignore unknown fields, as fal's apps do; known ones are strict about their values."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, defer_build=True)

    enable_occlusion_prevention: bool = Field(
        default=False, description="Occlusion-aware model for faces covered by hands/objects (costs 2x)."
    )


class FaceSwapInputVideo(_Input):
    source_face_url: ImageUrl
    target_video_url: VideoUrl


class FaceSwapInputImage(_Input):
    source_face_url: ImageUrl
    target_image_url: ImageUrl


class _MultiInput(_Input):
    source_face_url_1: ImageUrl
    source_gender_1: Gender
    source_face_url_2: ImageUrl | None = None
    source_gender_2: Gender | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _second_face_together(cls, data: Any, handler: Any) -> Any:
        """source_face_url_2 and source_gender_2 come together; the error names the missing one."""
        model = handler(data)
        missing = None
        if model.source_face_url_2 is not None and model.source_gender_2 is None:
            missing = ("source_gender_2", "source_gender_2 is required when source_face_url_2 is provided")
        elif model.source_gender_2 is not None and model.source_face_url_2 is None:
            missing = ("source_face_url_2", "source_face_url_2 is required when source_gender_2 is provided")
        if missing:
            raise ValidationError.from_exception_data(
                cls.__name__,
                [InitErrorDetails(type=PydanticCustomError("missing", missing[1]), loc=(missing[0],), input=data)],
            )
        return model

    def sources(self) -> list[tuple[str, Gender]]:
        """(url, gender) pairs in order."""
        out = [(self.source_face_url_1, self.source_gender_1)]
        if self.source_face_url_2 is not None and self.source_gender_2 is not None:
            out.append((self.source_face_url_2, self.source_gender_2))
        return out


class FaceSwapInputVideoMulti(_MultiInput):
    target_video_url: VideoUrl


class FaceSwapInputImageMulti(_MultiInput):
    target_image_url: ImageUrl


FaceSwapInput = FaceSwapInputVideo | FaceSwapInputImage | FaceSwapInputVideoMulti | FaceSwapInputImageMulti


def _round_number(value: Any) -> Any:
    """processing_time_ms is an integer in the seed; tolerate a float from other servers."""
    if isinstance(value, float):
        return round(value)
    return value


class File(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    url: str
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None
    file_data: str | None = None


class ImageFile(File):
    width: int | None = None
    height: int | None = None


class _Output(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    processing_time_ms: Annotated[int | None, BeforeValidator(_round_number)] = None
    warning: str | None = None


class VideoOutput(_Output):
    video: File


class ImageOutput(_Output):
    image: ImageFile


class Endpoint(str, Enum):
    """The four sub-paths of the app; the variant decides the input/output models."""

    VIDEO = "faceswapvideo"
    IMAGE = "faceswapimage"
    VIDEO_MULTI = "faceswapvideomulti"
    IMAGE_MULTI = "faceswapimagemulti"

    def fal_id(self, app_id: str) -> str:
        return f"{app_id.strip('/')}/{self.value}"

    @property
    def is_video(self) -> bool:
        return self in (Endpoint.VIDEO, Endpoint.VIDEO_MULTI)

    @property
    def is_multi(self) -> bool:
        return self in (Endpoint.VIDEO_MULTI, Endpoint.IMAGE_MULTI)

    @property
    def kind(self) -> MediaKind:
        return "video" if self.is_video else "image"

    @property
    def target_field(self) -> str:
        return "target_video_url" if self.is_video else "target_image_url"

    @property
    def input_model(self) -> type[_Input]:
        return _INPUT_MODELS[self]

    @property
    def output_model(self) -> type[VideoOutput] | type[ImageOutput]:
        return VideoOutput if self.is_video else ImageOutput

    @classmethod
    def choose(cls, kind: MediaKind, multi: bool) -> Endpoint:
        if kind == "video":
            return cls.VIDEO_MULTI if multi else cls.VIDEO
        return cls.IMAGE_MULTI if multi else cls.IMAGE


_INPUT_MODELS: dict[Endpoint, type[_Input]] = {
    Endpoint.VIDEO: FaceSwapInputVideo,
    Endpoint.IMAGE: FaceSwapInputImage,
    Endpoint.VIDEO_MULTI: FaceSwapInputVideoMulti,
    Endpoint.IMAGE_MULTI: FaceSwapInputImageMulti,
}


# ---- queue protocol -------------------------------------------------------------------------------

QueueState = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]


class QueueSubmitResponse(BaseModel):
    """Answer to the submit POST; only request_id is needed by us (URLs are rebuilt sub-path-less)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    request_id: str = Field(min_length=1)
    response_url: str | None = None
    status_url: str | None = None
    cancel_url: str | None = None
    queue_position: int | None = None
    status: str | None = None
    gateway_request_id: str | None = None


class LogEntry(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    message: str
    level: str | None = None
    source: str | None = None
    timestamp: str | None = None


class QueueMetrics(BaseModel):
    model_config = ConfigDict(extra="allow", defer_build=True)

    inference_time: float | None = None


class QueueStatus(BaseModel):
    """Status poll answer. Unknown status strings are kept (and mean 'still processing')."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    status: QueueState | str
    request_id: str | None = None
    response_url: str | None = None
    status_url: str | None = None
    cancel_url: str | None = None
    queue_position: int | None = None
    logs: list[LogEntry] | None = None
    metrics: QueueMetrics | None = None
    error: str | None = None
    error_type: str | None = None

    @property
    def is_completed(self) -> bool:
        return self.status == "COMPLETED"

    @property
    def failed(self) -> bool:
        """A COMPLETED run that reported an error (the result call will raise)."""
        return self.is_completed and self.error is not None


class WebhookPayload(BaseModel):
    """The body fal POSTs to fal_webhook. Status other than OK/ERROR is tolerated (treat as not final)."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    request_id: str = Field(min_length=1)
    gateway_request_id: str | None = None
    status: Literal["OK", "ERROR"] | str
    payload: Any = None
    error: str | None = None
    payload_error: str | None = None

    @property
    def is_ok(self) -> bool:
        return self.status == "OK"

    @property
    def is_error(self) -> bool:
        return self.status == "ERROR"
