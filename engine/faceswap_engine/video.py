"""Streamed video transcode: decode → per-frame function → H.264/AAC MP4, with no frame ever written to disk.

Three stages run at once so the two cores stay busy and memory stays flat for any length: a decode thread
(demux, decode, convert to BGR), the caller's thread (``frame_fn``, which keeps per-track state and so must see the
frames in order), and an encode thread (libx264 + audio + mux). Bounded queues between them hold a few frames.

The seed's limits are applied here: FPS capped at 25 (frames dropped evenly), duration capped at 25 minutes
(truncated), each with the seed's ``warning`` text. Output pts are renumbered (Xvid/AVI pts are unusable as encoder
pts). Audio is copied when MP4 carries the codec well (AAC, MP3) and otherwise re-encoded to AAC in the same pass.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.error
import cv2
import numpy as np

from .errors import Cancelled, CorruptMedia, UnsupportedFormat

log = logging.getLogger(__name__)

MAX_FPS = Fraction(25)
MAX_DURATION_S = 25 * 60.0
COPY_AUDIO_CODECS = frozenset({"aac", "mp3", "mp3float"})
_AAC_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_QUEUE_FRAMES = 6
_PUT_POLL_S = 0.1

FrameFn = Callable[[np.ndarray], np.ndarray]
ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about its first video stream (and audio, if any)."""

    width: int
    height: int
    fps: Fraction
    frames: int  # declared or estimated; 0 when unknown
    duration_s: float
    video_codec: str
    audio_codec: str | None
    container: str


@dataclass
class VideoResult:
    """What the transcode produced; ``warning`` is the seed's output field (None when nothing was changed)."""

    frames_in: int
    frames_out: int
    fps_in: Fraction
    fps_out: Fraction
    width: int
    height: int
    duration_s: float
    audio: str | None  # "copy", "aac" or None
    warnings: list[str] = field(default_factory=list)
    processing_time_ms: int = 0

    @property
    def warning(self) -> str | None:
        return "; ".join(self.warnings) or None


def _fmt_rate(rate: Fraction) -> str:
    """25 → "25", 30000/1001 → "29.97"."""
    value = float(rate)
    return str(int(value)) if value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")


def _open_input(path: Path) -> Any:
    try:
        container = av.open(str(path), mode="r")
    except av.error.InvalidDataError as exc:
        raise CorruptMedia(f"the video cannot be read (corrupt or not a video): {exc.strerror}") from exc
    except av.error.FFmpegError as exc:
        raise CorruptMedia(f"the video cannot be opened: {exc}") from exc
    if not container.streams.video:
        container.close()
        raise UnsupportedFormat("the file has no video stream")
    return container


def _stream_rate(stream: Any) -> Fraction:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    raise CorruptMedia("the video has no usable frame rate")


def _duration_s(container: Any, stream: Any) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def probe_video(path: Path) -> VideoInfo:
    """Read the headers only; raises CorruptMedia / UnsupportedFormat like the transcode would."""
    container = _open_input(path)
    try:
        vs = container.streams.video[0]
        rate = _stream_rate(vs)
        duration = _duration_s(container, vs)
        frames = vs.frames or int(round(duration * float(rate)))
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        return VideoInfo(
            width=vs.codec_context.width,
            height=vs.codec_context.height,
            fps=rate,
            frames=frames,
            duration_s=duration,
            video_codec=vs.codec_context.name,
            audio_codec=audio,
            container=container.format.name,
        )
    finally:
        container.close()


class _Stop(Exception):
    """Internal: another stage failed or the job was cancelled; unwind quietly."""


class _Pipeline:
    """Shared state of one transcode's three stages."""

    def __init__(self, cancel: CancelFn | None) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.cancel = cancel
        self.decoded = queue.Queue[tuple[str, Any] | None](maxsize=_QUEUE_FRAMES)
        self.processed = queue.Queue[tuple[str, Any] | None](maxsize=_QUEUE_FRAMES)

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self.stop.set()

    def put(self, q: queue.Queue[Any], item: Any) -> None:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                q.put(item, timeout=_PUT_POLL_S)
                return
            except queue.Full:
                continue

    def get(self, q: queue.Queue[Any]) -> Any:
        while True:
            if self.stop.is_set():
                raise _Stop
            try:
                return q.get(timeout=_PUT_POLL_S)
            except queue.Empty:
                continue


@dataclass
class _Plan:
    """Decisions taken from the headers before any frame is decoded."""

    in_rate: Fraction
    out_rate: Fraction
    start_s: float
    max_duration_s: float
    width: int
    height: int
    expected_in: int
    expected_out: int
    declared: bool  # expected_in comes from the header's frame count (not estimated from the duration)
    audio_mode: str | None
    warnings: list[str]
    rotation: int = 0  # display rotation (degrees counterclockwise) applied to the pixels so faces are upright
    coded_width: int = 0
    coded_height: int = 0


def _make_plan(container: Any, max_fps: Fraction, max_duration_s: float) -> _Plan:
    vs = container.streams.video[0]
    in_rate = _stream_rate(vs)
    out_rate = min(in_rate, max_fps)
    warnings: list[str] = []
    if in_rate > max_fps:
        warnings.append(f"FPS reduced from {_fmt_rate(in_rate)} to {_fmt_rate(out_rate)}")
    duration = _duration_s(container, vs)
    if duration > max_duration_s:
        warnings.append(
            f"Video truncated from {duration / 60:.1f} to {max_duration_s / 60:g} minutes (maximum duration)"
        )
    expected_in = vs.frames or int(round(duration * float(in_rate)))
    kept_in = min(expected_in, int(max_duration_s * float(in_rate))) if expected_in else 0
    expected_out = int(kept_in * out_rate / in_rate) if kept_in else 0
    start = float(vs.start_time * vs.time_base) if vs.start_time is not None and vs.time_base else 0.0
    audio_mode = None
    if container.streams.audio:
        name = container.streams.audio[0].codec_context.name
        audio_mode = "copy" if name in COPY_AUDIO_CODECS else "aac"
    width = vs.codec_context.width
    height = vs.codec_context.height
    if width < 2 or height < 2:
        raise CorruptMedia("the video has no usable frame size")
    return _Plan(in_rate, out_rate, start, max_duration_s, width, height, expected_in, expected_out,
                 bool(vs.frames), audio_mode, warnings)


def _display_rotation(path: Path) -> int:
    """Rotation of the first frame's display matrix (phone videos are stored sideways), as 0/90/180/270."""
    try:
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                return int(round(frame.rotation or 0)) % 360
    except (av.error.FFmpegError, AttributeError, ValueError):
        return 0
    return 0


def _upright(array: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate the decoded pixels counterclockwise by the display rotation, as a player would show them."""
    if rotation == 90:
        return cv2.rotate(array, cv2.ROTATE_90_COUNTERCLOCKWISE)
    if rotation == 180:
        return cv2.rotate(array, cv2.ROTATE_180)
    if rotation == 270:
        return cv2.rotate(array, cv2.ROTATE_90_CLOCKWISE)
    return array


def _keep_frame(index: int, ratio: Fraction) -> bool:
    """Even frame dropping: keep input frame i when floor((i+1)·r) > floor(i·r), r = out/in ≤ 1."""
    if ratio >= 1:
        return True
    return int((index + 1) * ratio) > int(index * ratio)


def _decode_stage(p: _Pipeline, container: Any, plan: _Plan, counters: dict[str, int]) -> None:
    """Demux and decode; BGR frames and audio (packets to copy or frames to re-encode) go downstream in order."""
    vs = container.streams.video[0]
    vs.thread_type = "AUTO"
    streams = [vs]
    a_in = container.streams.audio[0] if plan.audio_mode else None
    if a_in is not None:
        streams.append(a_in)
    ratio = plan.out_rate / plan.in_rate
    index = 0
    done = False
    errors = 0
    for packet in container.demux(*streams):
        if p.stop.is_set():
            raise _Stop
        if p.cancel is not None and p.cancel():
            raise Cancelled("the request was cancelled")
        if packet.stream is a_in:
            _decode_audio(p, packet, plan, a_in)
            continue
        try:
            frames = packet.decode()
        except av.error.InvalidDataError:
            errors += 1
            counters["decode_errors"] = errors
            continue
        for frame in frames:
            t = float(frame.time) - plan.start_s if frame.time is not None else index / float(plan.in_rate)
            if t >= plan.max_duration_s - 1e-6:
                done = True
                break
            if _keep_frame(index, ratio):
                p.put(p.decoded, ("v", _to_bgr(frame, plan)))
            index += 1
            counters["frames_in"] = index
        if done:
            break
    if not done:
        try:
            for frame in vs.codec_context.decode(None):
                if _keep_frame(index, ratio):
                    p.put(p.decoded, ("v", _to_bgr(frame, plan)))
                index += 1
                counters["frames_in"] = index
        except av.error.FFmpegError:
            counters["decode_errors"] = counters.get("decode_errors", 0) + 1
    p.put(p.decoded, None)


def _to_bgr(frame: Any, plan: _Plan) -> np.ndarray:
    if frame.width != plan.coded_width or frame.height != plan.coded_height:
        frame = frame.reformat(width=plan.coded_width, height=plan.coded_height)
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        # OpenCV's SIMD I420 conversion costs about a quarter of swscale's bgr24 path (both BT.601, limited range);
        # at 720p that is ~2 ms instead of ~9 ms a frame, on the critical path.
        bgr = cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2BGR_I420)
    else:
        bgr = frame.to_ndarray(format="bgr24")
    return _upright(bgr, plan.rotation)


def _decode_audio(p: _Pipeline, packet: Any, plan: _Plan, a_in: Any) -> None:
    if packet.pts is None or packet.time_base is None:
        return
    t = float(packet.pts * packet.time_base) - plan.start_s
    if t >= plan.max_duration_s or t < -0.5:
        return
    if plan.audio_mode == "copy":
        p.put(p.decoded, ("ap", packet))
        return
    try:
        for frame in packet.decode():
            p.put(p.decoded, ("af", frame))
    except av.error.FFmpegError:
        log.debug("skipped an undecodable audio packet")


def _encode_stage(p: _Pipeline, out: Any, plan: _Plan, a_in: Any, counters: dict[str, int]) -> None:
    """Encode and mux in one thread (the muxer is not thread-safe)."""
    w, h = plan.width & ~1, plan.height & ~1
    vs = out.add_stream("libx264", rate=plan.out_rate)
    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
    vs.codec_context.time_base = 1 / plan.out_rate
    vs.options = {"preset": "veryfast", "crf": "20"}
    vs.codec_context.thread_type = "AUTO"  # let libx264 use every core while the swap runs in another thread
    a_out = None
    a_samples = 0
    start_a = 0
    if plan.audio_mode == "copy":
        a_out = out.add_stream_from_template(a_in)
        start_a = int(round(plan.start_s / a_in.time_base)) if a_in.time_base else 0
    elif plan.audio_mode == "aac":
        a_out = out.add_stream("aac", rate=a_in.codec_context.sample_rate or 48000)
        channels = a_in.codec_context.channels or 2
        # Containers like MXF carry "N channels" with no order; AAC needs a named layout (1→mono, 2→stereo…).
        a_out.codec_context.layout = _AAC_LAYOUTS.get(channels, "stereo")
        a_out.codec_context.bit_rate = 160_000
    index = 0
    while True:
        item = p.get(p.processed)
        if item is None:
            break
        kind, value = item
        if kind == "v":
            if value.shape[0] != h or value.shape[1] != w:
                value = value[:h, :w]
            # BGR → I420 in OpenCV (see _to_bgr), so the encoder gets yuv420p and swscale is not needed.
            yuv = cv2.cvtColor(np.ascontiguousarray(value), cv2.COLOR_BGR2YUV_I420)
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts = index
            frame.time_base = vs.codec_context.time_base
            out.mux(vs.encode(frame))
            index += 1
            counters["frames_out"] = index
        elif kind == "ap" and a_out is not None:
            value.stream = a_out
            if value.pts is not None:
                value.pts -= start_a
            if value.dts is not None:
                value.dts -= start_a
            if value.dts is not None and value.dts < 0 and value.pts is not None and value.pts < 0:
                continue
            out.mux(value)
        elif kind == "af" and a_out is not None:
            if a_samples == 0 and value.time is not None:
                # keep A/V sync when the source's audio starts after its video
                a_samples = max(0, int(round((float(value.time) - plan.start_s) * value.sample_rate)))
            value.pts = a_samples
            value.time_base = Fraction(1, value.sample_rate)
            a_samples += value.samples
            out.mux(a_out.encode(value))
    out.mux(vs.encode(None))
    if plan.audio_mode == "aac" and a_out is not None:
        out.mux(a_out.encode(None))


def transcode(
    src: Path,
    dst: Path,
    frame_fn: FrameFn,
    *,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
    max_fps: Fraction | int = MAX_FPS,
    max_duration_s: float = MAX_DURATION_S,
) -> VideoResult:
    """Decode ``src``, apply ``frame_fn`` to every kept BGR frame in order, and write an H.264/AAC MP4 to ``dst``.

    Raises CorruptMedia (unreadable, truncated or damaged input), UnsupportedFormat (no video stream) or Cancelled.
    ``dst`` is removed on any failure, so a partial output never survives.
    """
    started = time.perf_counter()
    container = _open_input(Path(src))
    p = _Pipeline(cancel)
    counters: dict[str, int] = {"frames_in": 0, "frames_out": 0, "decode_errors": 0}
    out = None
    try:
        plan = _make_plan(container, Fraction(max_fps), max_duration_s)
        plan.coded_width, plan.coded_height = plan.width, plan.height
        plan.rotation = _display_rotation(Path(src))
        if plan.rotation in (90, 270):
            plan.width, plan.height = plan.height, plan.width
        a_in = container.streams.audio[0] if plan.audio_mode else None
        out = av.open(str(dst), mode="w", format="mp4", options={"movflags": "+faststart"})

        def run(stage: Callable[[], None]) -> None:
            try:
                stage()
            except _Stop:
                pass
            except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
                p.fail(exc)

        decoder = threading.Thread(
            target=run, args=(lambda: _decode_stage(p, container, plan, counters),), name="video-decode", daemon=True
        )
        encoder = threading.Thread(
            target=run, args=(lambda: _encode_stage(p, out, plan, a_in, counters),), name="video-encode", daemon=True
        )
        decoder.start()
        encoder.start()
        done = 0
        try:
            while True:
                item = p.get(p.decoded)
                if item is None:
                    p.put(p.processed, None)
                    break
                if item[0] == "v":
                    if cancel is not None and cancel():
                        raise Cancelled("the request was cancelled")
                    result = frame_fn(item[1])
                    p.put(p.processed, ("v", result))
                    done += 1
                    if progress is not None:
                        progress(done, max(plan.expected_out, done))
                else:
                    p.put(p.processed, item)
        except _Stop:
            pass
        except BaseException as exc:
            p.fail(exc)
        decoder.join()
        encoder.join()
        if p.error is not None:
            raise p.error
        _check_complete(plan, counters)
        out.close()
        out = None
    except av.error.FFmpegError as exc:
        _discard(out, dst)
        raise CorruptMedia(f"the video could not be processed: {exc}") from exc
    except BaseException:
        _discard(out, dst)
        raise
    finally:
        container.close()
    frames_out = counters["frames_out"]
    return VideoResult(
        frames_in=counters["frames_in"],
        frames_out=frames_out,
        fps_in=plan.in_rate,
        fps_out=plan.out_rate,
        width=plan.width & ~1,
        height=plan.height & ~1,
        duration_s=frames_out / float(plan.out_rate),
        audio=plan.audio_mode,
        warnings=plan.warnings,
        processing_time_ms=int((time.perf_counter() - started) * 1000),
    )


def _check_complete(plan: _Plan, counters: dict[str, int]) -> None:
    """A truncated or damaged file decodes only part of what its headers declare: refuse it rather than return half."""
    frames_in, errors = counters["frames_in"], counters["decode_errors"]
    if frames_in == 0:
        raise CorruptMedia("the video has no decodable frames (corrupt or truncated)")
    expected = min(plan.expected_in, int(plan.max_duration_s * float(plan.in_rate))) if plan.expected_in else 0
    # Declared counts are exact; a count estimated from the container duration (mkv, wmv…) is only roughly right.
    if expected and frames_in < (0.9 if plan.declared else 0.75) * expected and (plan.declared or expected >= 20):
        raise CorruptMedia(
            f"the video is truncated or damaged: {frames_in} of {expected} declared frames could be decoded"
        )
    if errors > max(10, frames_in // 20):
        raise CorruptMedia(f"the video is damaged: {errors} packets could not be decoded")


def _discard(out: Any, dst: Path) -> None:
    if out is not None:
        try:
            out.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            pass
    try:
        Path(dst).unlink(missing_ok=True)
    except OSError:
        pass


__all__ = [
    "MAX_DURATION_S",
    "MAX_FPS",
    "VideoInfo",
    "VideoResult",
    "probe_video",
    "transcode",
]
