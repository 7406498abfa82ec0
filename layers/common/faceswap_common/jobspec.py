"""From an S3 key to what must be submitted: the JobSpec.

Two kinds of trigger keys:
- drop folder `inbox/<face>/<file>`: swap the registered face `faces/<face>.<image ext>` into `<file>`;
- manifest `jobs/<anything>.json`: any of the four variants (see manifest.py).

Keys passed to `resolve_job_spec` must already be URL-DECODED (S3 event keys are form-encoded: use
`decode_event_key`, i.e. `unquote_plus`, on the raw event key). Keys that are not ours are *ignored*
(a Resolution with a reason, never an error); keys that are ours but unusable raise PipelineError.
The JobSpec holds S3 keys and URLs only, never presigned URLs, so it can be stored on the job record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, ValidationError

from .api_models import Endpoint, FaceSwapInput, Gender
from .errors import ErrorCode, PipelineError
from .manifest import Manifest, MediaRef
from .media_types import IMAGE_EXTENSIONS, MediaKind, extension_of, kind_of, url_path_extension
from .settings import MiB, GiB, Settings

INBOX_PREFIX = "inbox/"
JOBS_PREFIX = "jobs/"
FACES_PREFIX = "faces/"
# Which registered face wins when several extensions exist for one name (deterministic).
FACE_EXTENSION_PREFERENCE = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff")

Presign = Callable[[str], str]


def decode_event_key(raw_key: str) -> str:
    """S3 event notification keys are URL-encoded with '+' for spaces (and moto even encodes '/')."""
    return unquote_plus(raw_key)


class SizeLimits(BaseModel):
    model_config = ConfigDict(frozen=True)

    image: int = 50 * MiB
    video: int = 2 * GiB
    manifest: int = 256 * 1024

    @classmethod
    def from_settings(cls, settings: Settings) -> SizeLimits:
        return cls(image=settings.max_image_bytes, video=settings.max_video_bytes, manifest=settings.max_manifest_bytes)

    def for_kind(self, kind: MediaKind) -> int:
        return self.video if kind == "video" else self.image


class FaceInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    ref: MediaRef
    gender: Gender | None = None


class JobSpec(BaseModel):
    """What to submit, as references (keys / URLs) into the media bucket."""

    model_config = ConfigDict(frozen=True)

    endpoint: Endpoint
    bucket: str
    trigger_key: str
    origin: Literal["drop_folder", "manifest"]
    target: MediaRef
    faces: tuple[FaceInput, ...]
    enable_occlusion_prevention: bool = False

    def inputs(self) -> dict[str, Any]:
        """The provider input with s3://bucket/key in place of URLs: what the job record stores."""
        out: dict[str, Any] = {}
        if self.endpoint.is_multi:
            for index, face in enumerate(self.faces, start=1):
                out[f"source_face_url_{index}"] = face.ref.as_record(self.bucket)
                out[f"source_gender_{index}"] = face.gender.value if face.gender else None
        else:
            out["source_face_url"] = self.faces[0].ref.as_record(self.bucket)
        out[self.endpoint.target_field] = self.target.as_record(self.bucket)
        out["enable_occlusion_prevention"] = self.enable_occlusion_prevention
        return out

    def s3_keys(self) -> list[str]:
        refs = [self.target, *(f.ref for f in self.faces)]
        return [r.value for r in refs if r.kind == "s3"]

    def build_input(self, presign: Presign) -> FaceSwapInput:
        """The provider's input model, with every key of this bucket replaced by presign(key)."""
        return provider_input_from_record(self.endpoint, self.inputs(), self.bucket, presign)


def provider_input_from_record(
    endpoint: Endpoint, inputs: Mapping[str, Any], bucket: str, presign: Presign
) -> FaceSwapInput:
    """Rebuild the provider input from a job record's `inputs` (also used by the reconciler)."""
    prefix = f"s3://{bucket}/"
    data: dict[str, Any] = {}
    for name, value in inputs.items():
        if value is None:
            continue
        if isinstance(value, str) and value.startswith("s3://"):
            if not value.startswith(prefix):
                raise PipelineError(ErrorCode.INPUT_INVALID, f"{name}: {value} is not in bucket {bucket}")
            value = presign(value[len(prefix):])
        data[name] = value
    try:
        return endpoint.input_model.model_validate(data)  # type: ignore[return-value]
    except ValidationError as exc:
        detail = _errors(exc)
        raise PipelineError(ErrorCode.INPUT_INVALID, "; ".join(f"{d['loc']}: {d['msg']}" for d in detail), detail) from None


class Resolution(BaseModel):
    """Either a JobSpec, or the reason the key was ignored (not ours: no job, just a log line)."""

    spec: JobSpec | None = None
    ignored_reason: str | None = None

    @property
    def ignored(self) -> bool:
        return self.spec is None


def _ignored(reason: str) -> Resolution:
    return Resolution(ignored_reason=reason)


def _errors(exc: ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors():
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        out.append({"loc": loc or "(manifest)", "msg": err["msg"], "type": err["type"]})
    return out


def resolve_job_spec(
    s3: Any,
    bucket: str,
    key: str,
    limits: SizeLimits = SizeLimits(),
    *,
    enable_occlusion_prevention: bool = False,
) -> Resolution:
    """Resolve a DECODED key of `bucket` into a JobSpec (or an ignore reason); raises PipelineError."""
    if key.startswith(INBOX_PREFIX):
        return _resolve_drop_folder(s3, bucket, key, limits, enable_occlusion_prevention)
    if key.startswith(JOBS_PREFIX):
        if extension_of(key) != "json":
            return _ignored("not a manifest: jobs/ keys must end in .json")
        return _resolve_manifest(s3, bucket, key, limits)
    return _ignored("key is outside inbox/ and jobs/")


def _resolve_drop_folder(s3: Any, bucket: str, key: str, limits: SizeLimits, occlusion: bool) -> Resolution:
    parts = key.split("/")
    if len(parts) != 3 or not parts[2]:
        return _ignored("drop-folder keys must look like inbox/<face>/<file>")
    face, file_name = parts[1], parts[2]
    kind = kind_of(file_name)
    if kind is None:
        return _ignored(f"unknown extension {extension_of(file_name)!r}")
    if not face or face in (".", "..") or any(ord(c) < 32 for c in face):
        raise PipelineError(ErrorCode.INPUT_INVALID, f"invalid face name {face!r} in {key}")
    _check_object(s3, bucket, key, limits.for_kind(kind))
    face_key, face_size = _find_face(s3, bucket, face)
    _check_size(face_key, face_size, limits.image)
    spec = JobSpec(
        endpoint=Endpoint.choose(kind, multi=False),
        bucket=bucket,
        trigger_key=key,
        origin="drop_folder",
        target=MediaRef(kind="s3", value=key),
        faces=(FaceInput(ref=MediaRef(kind="s3", value=face_key)),),
        enable_occlusion_prevention=occlusion,
    )
    return Resolution(spec=spec)


def _find_face(s3: Any, bucket: str, face: str) -> tuple[str, int]:
    """faces/<face>.<ext>: which image extension exists (one LIST with the prefix)."""
    prefix = f"{FACES_PREFIX}{face}."
    found: dict[str, tuple[str, int]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            ext = obj["Key"][len(prefix):]
            if ext.lower() in IMAGE_EXTENSIONS and "/" not in ext:
                found[ext.lower()] = (obj["Key"], int(obj["Size"]))
    for ext in FACE_EXTENSION_PREFERENCE:
        if ext in found:
            return found[ext]
    raise PipelineError(
        ErrorCode.NO_REGISTERED_FACE,
        f"no registered face {face!r}: upload faces/{face}.<jpg|png|webp|bmp|tiff> first",
        {"face": face, "prefix": prefix},
    )


def _check_size(key: str, size: int, limit: int) -> None:
    if size <= 0:
        raise PipelineError(ErrorCode.OBJECT_EMPTY, f"{key} is empty (0 bytes)", {"key": key})
    if size > limit:
        raise PipelineError(
            ErrorCode.OBJECT_TOO_LARGE, f"{key} is {size} bytes; the limit is {limit}", {"key": key, "size": size, "limit": limit}
        )


def _check_object(s3: Any, bucket: str, key: str, limit: int) -> int:
    """HEAD the object: it must exist, be non-empty and within the limit."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except Exception as exc:  # botocore ClientError: 404 / 403
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise PipelineError(ErrorCode.OBJECT_NOT_FOUND, f"{key} does not exist in {bucket}", {"key": key}) from None
        raise
    size = int(head["ContentLength"])
    _check_size(key, size, limit)
    return size


def _resolve_manifest(s3: Any, bucket: str, key: str, limits: SizeLimits) -> Resolution:
    _check_object(s3, bucket, key, limits.manifest)
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        raw = body.read(limits.manifest + 1)
    finally:
        body.close()
    _check_size(key, len(raw), limits.manifest)
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:  # RecursionError: absurd nesting
        raise PipelineError(ErrorCode.MANIFEST_NOT_JSON, f"{key} is not JSON: {exc}", {"key": key}) from None
    try:
        manifest = Manifest.model_validate(data, context={"bucket": bucket})
    except ValidationError as exc:
        detail = _errors(exc)
        message = "; ".join(f"{d['loc']}: {d['msg']}" for d in detail)
        raise PipelineError(ErrorCode.MANIFEST_INVALID, f"{key}: {message}", detail) from None
    target = manifest.target_ref
    kind = kind_of(target.value if target.kind == "s3" else f"x.{url_path_extension(target.value)}")
    assert kind is not None  # the manifest model guarantees a known extension
    for ref, limit in [(target, limits.for_kind(kind)), *((f, limits.image) for f, _ in manifest.face_refs())]:
        if ref.kind == "s3":
            _check_object(s3, bucket, ref.value, limit)
    spec = JobSpec(
        endpoint=Endpoint.choose(kind, multi=manifest.is_multi),
        bucket=bucket,
        trigger_key=key,
        origin="manifest",
        target=target,
        faces=tuple(FaceInput(ref=ref, gender=gender) for ref, gender in manifest.face_refs()),
        enable_occlusion_prevention=manifest.enable_occlusion_prevention,
    )
    return Resolution(spec=spec)


__all__ = [
    "JobSpec",
    "FaceInput",
    "Resolution",
    "SizeLimits",
    "decode_event_key",
    "resolve_job_spec",
    "provider_input_from_record",
]
