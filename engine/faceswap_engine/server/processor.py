"""What a request does: fetch the inputs, swap (image or video, single or multi by gender), publish the result.

The server calls a ``Processor``; the default one runs the real engine. The swap itself sits behind ``Swapper`` so
the HTTP and I/O plumbing can be exercised with a simple frame function in tests; production always uses
``EngineSwapper`` (faceswap_engine.swap).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel

from faceswap_common.api_models import Endpoint

from .. import media
from ..errors import EngineError, NoFaceInSource
from ..fetch import FetchLimits, fetch
from ..jobs import JobContext
from ..video import transcode
from .config import ServerConfig

log = logging.getLogger(__name__)

Gender = Literal["female", "male"]
FrameFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Source:
    """A decoded source face and the input field it came from (for error locations)."""

    image_bgr: np.ndarray
    gender: Gender | None
    field: str


class VideoSwap(Protocol):
    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray: ...

    def warnings(self) -> list[str]: ...


class Swapper(Protocol):
    """The face-swap operations a request needs; raises NoFaceInSource for a source without a face."""

    def swap_image(self, sources: Sequence[Source], target_bgr: np.ndarray, occlusion: bool) -> tuple[np.ndarray, list[str]]: ...

    def video(self, sources: Sequence[Source], occlusion: bool) -> VideoSwap: ...


class Processor(Protocol):
    def run(self, endpoint: Endpoint, inputs: BaseModel, ctx: JobContext) -> dict[str, Any]: ...


def _fix_loc(exc: NoFaceInSource, sources: Sequence[Source]) -> NoFaceInSource:
    """Make the error name the input field ("body" is added by as_detail)."""
    loc = [part for part in exc.loc if part != "body"]
    if not loc or loc[0] not in {s.field for s in sources}:
        loc = [sources[0].field] if len(sources) == 1 else loc or [sources[0].field]
    exc.loc = loc
    return exc


class _SessionVideoSwap:
    def __init__(self, session: Any) -> None:
        self._session = session

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        return self._session.process_frame(frame_bgr)

    def warnings(self) -> list[str]:
        stats = getattr(self._session, "stats", None)
        if stats is not None and getattr(stats, "frames", 0) and not getattr(stats, "frames_with_face", 1):
            return ["No face was found in the target video; it is returned unchanged"]
        return []


class EngineSwapper:
    """The real engine (faceswap_engine.swap), with the optional user-supplied ONNX backend."""

    def __init__(self, weights_dir: Path | None = None) -> None:
        self._weights_dir = weights_dir
        self._backend: Any = None

    def _backend_or_none(self) -> Any:
        if self._weights_dir is None:
            return None
        if self._backend is None:
            from ..onnx_tier import load_backend  # type: ignore[attr-defined]

            self._backend = load_backend(self._weights_dir)
        return self._backend

    @staticmethod
    def _faces(sources: Sequence[Source]) -> list[Any]:
        from ..swap import SourceFace

        return [SourceFace(image_bgr=s.image_bgr, gender=s.gender) for s in sources]

    def swap_image(self, sources: Sequence[Source], target_bgr: np.ndarray, occlusion: bool) -> tuple[np.ndarray, list[str]]:
        from ..swap import FaceSwapSession, SwapOptions, swap_image

        backend = self._backend_or_none()
        options = SwapOptions(occlusion=occlusion)
        try:
            if backend is None:
                out, warnings = swap_image(self._faces(sources), target_bgr, options)
                return out, list(warnings)
            session = FaceSwapSession(self._faces(sources), options, backend)
            out, found = session.process_still(target_bgr)
        except NoFaceInSource as exc:
            raise _fix_loc(exc, sources) from None
        if not found:
            return target_bgr.copy(), ["No face was detected in the target image; it is returned unchanged."]
        return out, []

    def video(self, sources: Sequence[Source], occlusion: bool) -> VideoSwap:
        from ..swap import FaceSwapSession, SwapOptions

        try:
            session = FaceSwapSession(self._faces(sources), SwapOptions(occlusion=occlusion), self._backend_or_none())
        except NoFaceInSource as exc:
            raise _fix_loc(exc, sources) from None
        return _SessionVideoSwap(session)


class EngineProcessor:
    """Default processor: the four seed endpoints on the offline engine."""

    def __init__(self, config: ServerConfig, swapper: Swapper | None = None) -> None:
        self._config = config
        self._swapper = swapper or EngineSwapper(config.weights_dir)
        common = {
            "connect_timeout_s": config.fetch_connect_timeout_s,
            "read_timeout_s": config.fetch_read_timeout_s,
            "total_timeout_s": config.fetch_total_timeout_s,
            "allowed_hosts": config.allowed_fetch_hosts,
        }
        self._image_limits = FetchLimits(max_bytes=config.max_image_bytes, **common)
        self._video_limits = FetchLimits(max_bytes=config.max_video_bytes, **common)

    def run(self, endpoint: Endpoint, inputs: BaseModel, ctx: JobContext) -> dict[str, Any]:
        started = time.perf_counter()
        occlusion = bool(getattr(inputs, "enable_occlusion_prevention", False))
        sources = self._sources(endpoint, inputs, ctx)
        if endpoint.is_video:
            output = self._video(inputs, sources, occlusion, ctx)
        else:
            output = self._image(inputs, sources, occlusion, ctx)
        output["processing_time_ms"] = int((time.perf_counter() - started) * 1000)
        model = endpoint.output_model.model_validate(output)
        return model.model_dump(mode="json")

    def _load_image(self, url: str, field: str, ctx: JobContext) -> media.DecodedImage:
        fetched = fetch(url, [field], self._image_limits)
        assert fetched.data is not None
        image = media.decode_image(fetched.data, [field], max_pixels=self._config.max_image_pixels)
        ctx.log(f"Loaded {field}: {image.format.upper()} {image.width}x{image.height}")
        return image

    def _sources(self, endpoint: Endpoint, inputs: BaseModel, ctx: JobContext) -> list[Source]:
        if endpoint.is_multi:
            pairs: list[tuple[str, Gender | None, str]] = [
                (inputs.source_face_url_1, inputs.source_gender_1.value, "source_face_url_1")  # type: ignore[attr-defined]
            ]
            if getattr(inputs, "source_face_url_2", None):
                pairs.append((inputs.source_face_url_2, inputs.source_gender_2.value, "source_face_url_2"))  # type: ignore[attr-defined]
        else:
            pairs = [(inputs.source_face_url, None, "source_face_url")]  # type: ignore[attr-defined]
        return [Source(self._load_image(url, field, ctx).bgr, gender, field) for url, gender, field in pairs]

    def _image(self, inputs: BaseModel, sources: list[Source], occlusion: bool, ctx: JobContext) -> dict[str, Any]:
        target = self._load_image(inputs.target_image_url, "target_image_url", ctx)  # type: ignore[attr-defined]
        result, warnings = self._swapper.swap_image(sources, target.bgr, occlusion)
        fmt = media.output_format_for(target.format)
        data = media.encode_image(result, fmt)
        name = f"faceswap.{media.extension_for(fmt)}"
        (ctx.files_dir / name).write_bytes(data)
        for w in warnings:
            ctx.log(w, "WARN")
        return {
            "image": {
                "url": ctx.file_url(name),
                "content_type": media.IMAGE_CONTENT_TYPES[fmt],
                "file_name": name,
                "file_size": len(data),
                "width": int(result.shape[1]),
                "height": int(result.shape[0]),
            },
            "warning": "; ".join(warnings) or None,
        }

    def _video(self, inputs: BaseModel, sources: list[Source], occlusion: bool, ctx: JobContext) -> dict[str, Any]:
        field = "target_video_url"
        src = ctx.work_dir / "target.video"
        fetched = fetch(inputs.target_video_url, [field], self._video_limits, dest=src)  # type: ignore[attr-defined]
        media.require_video_format(fetched.head, [field])
        ctx.log(f"Fetched {field}: {fetched.size} bytes")
        swap = self._swapper.video(sources, occlusion)
        name = "faceswap.mp4"
        dst = ctx.files_dir / name
        try:
            result = transcode(
                src, dst, swap, progress=ctx.progress, cancel=ctx.cancelled,
                max_fps=self._config.max_fps, max_duration_s=self._config.max_duration_s,
            )
        except EngineError as exc:
            if not exc.loc:
                exc.loc = [field]
            raise
        warnings = [*result.warnings, *swap.warnings()]
        for w in warnings:
            ctx.log(w, "WARN")
        ctx.log(f"Encoded {result.frames_out} frames at {float(result.fps_out):.3g} fps, audio: {result.audio or 'none'}")
        return {
            "video": {
                "url": ctx.file_url(name),
                "content_type": "video/mp4",
                "file_name": name,
                "file_size": dst.stat().st_size,
            },
            "warning": "; ".join(warnings) or None,
        }


__all__ = ["EngineProcessor", "EngineSwapper", "Processor", "Source", "Swapper", "VideoSwap"]
