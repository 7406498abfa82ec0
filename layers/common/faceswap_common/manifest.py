"""The `jobs/*.json` manifest: schema, and validation of every media reference it names.

References are checked against the bucket passed as validation context, so an `s3://` URI of another
bucket, a path trick or a key under `outputs/` is a schema error that names the field at fault.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .api_models import Gender
from .media_types import kind_of, url_path_extension

OUTPUT_PREFIX = "outputs/"


class MediaRef(BaseModel):
    """A resolved reference: an object key in the media bucket, or an https URL."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["s3", "url"]
    value: str

    def as_record(self, bucket: str) -> str:
        """How the job record stores it: s3://bucket/key or the URL (never a presigned URL)."""
        return f"s3://{bucket}/{self.value}" if self.kind == "s3" else self.value

    @property
    def name(self) -> str:
        """What the extension is read from."""
        return self.value if self.kind == "s3" else urlsplit(self.value).path


def check_key(key: str) -> str:
    """Refuse keys that could escape the intended layout (`..`, leading `/`, `outputs/`, control chars)."""
    if not key:
        raise PydanticCustomError("key_empty", "object key must not be empty")
    if key.startswith("/"):
        raise PydanticCustomError("key_unsafe", "object key must not start with '/'")
    if "\\" in key or any(ord(c) < 32 or ord(c) == 127 for c in key):
        raise PydanticCustomError("key_unsafe", "object key must not contain backslashes or control characters")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise PydanticCustomError("key_unsafe", "object key must not contain empty, '.' or '..' segments")
    if key.startswith(OUTPUT_PREFIX):
        raise PydanticCustomError("key_unsafe", "object key must not be under outputs/")
    if len(key.encode("utf-8")) > 1024:
        raise PydanticCustomError("key_unsafe", "object key is longer than 1024 bytes")
    return key


def parse_ref(value: str, bucket: str | None) -> MediaRef:
    """key | s3://<this bucket>/key | https://… → MediaRef (raises PydanticCustomError)."""
    value = value.strip()
    low = value.lower()
    if low.startswith("s3://"):
        rest = value[5:]
        ref_bucket, _, key = rest.partition("/")
        if bucket is not None and ref_bucket != bucket:
            raise PydanticCustomError(
                "foreign_bucket",
                "s3 URI names bucket '{other}'; only this bucket ('{bucket}') may be used",
                {"other": ref_bucket, "bucket": bucket},
            )
        return MediaRef(kind="s3", value=check_key(key))
    if low.startswith("https://"):
        parts = urlsplit(value)
        if not parts.hostname:
            raise PydanticCustomError("url_invalid", "https URL has no host")
        if parts.username or parts.password:
            raise PydanticCustomError("url_invalid", "https URL must not carry credentials")
        return MediaRef(kind="url", value=value)
    if "://" in value or low.startswith(("data:", "http:")):
        raise PydanticCustomError("ref_scheme", "must be an object key, an s3:// URI of this bucket or an https URL")
    return MediaRef(kind="s3", value=check_key(value))


def _ref_validator(role: Literal["face", "target"]) -> Any:
    def validate(value: Any, info: ValidationInfo) -> MediaRef:
        if isinstance(value, MediaRef):
            return value
        if not isinstance(value, str):
            raise PydanticCustomError("string_type", "Input should be a valid string")
        bucket = (info.context or {}).get("bucket")
        ref = parse_ref(value, bucket)
        kind = kind_of(ref.value) if ref.kind == "s3" else kind_of(f"x.{url_path_extension(ref.value) or ''}")
        if role == "face" and kind != "image":
            raise PydanticCustomError("face_extension", "face must be an image (bmp, jpeg, jpg, png, tif, tiff, webp)")
        if role == "target" and kind is None:
            raise PydanticCustomError("target_extension", "target must have a known video or image extension")
        return ref

    return validate


FaceRefValue = Annotated[MediaRef, BeforeValidator(_ref_validator("face"))]
TargetRefValue = Annotated[MediaRef, BeforeValidator(_ref_validator("target"))]


class ManifestFace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    image: FaceRefValue
    gender: Gender | None = None


class Manifest(BaseModel):
    """`{"target": ..., "faces": [{"image": ..., "gender": ...}], "enable_occlusion_prevention": false}`."""

    model_config = ConfigDict(extra="forbid")

    target: TargetRefValue
    faces: list[ManifestFace] = Field(min_length=1, max_length=2)
    enable_occlusion_prevention: bool = False

    @model_validator(mode="wrap")
    @classmethod
    def _genders(cls, data: Any, handler: Any) -> Manifest:
        """Two faces, or a gender on any face, means the multi endpoint: then every face needs a gender."""
        model = handler(data)
        if model.is_multi:
            errors = [
                InitErrorDetails(
                    type=PydanticCustomError(
                        "gender_required", "gender is required when there are two faces or any face has a gender"
                    ),
                    loc=("faces", index, "gender"),
                    input=data,
                )
                for index, face in enumerate(model.faces)
                if face.gender is None
            ]
            if errors:
                raise ValidationError.from_exception_data(cls.__name__, errors)
        return model

    @property
    def is_multi(self) -> bool:
        return len(self.faces) > 1 or any(f.gender is not None for f in self.faces)

    @property
    def target_ref(self) -> MediaRef:
        return self.target

    def face_refs(self) -> list[tuple[MediaRef, Gender | None]]:
        return [(face.image, face.gender) for face in self.faces]
