"""video.transcode on real files: Megamind (Xvid + AC3), generated clips in all nine seed containers, the caps,
corrupt and truncated inputs, cancellation and progress. Real PyAV decode/encode, tiny clips."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from faceswap_engine import sample_media
from faceswap_engine.errors import Cancelled, CorruptMedia, UnsupportedFormat
from faceswap_engine.server.testing import SEED_CONTAINERS, make_clip
from faceswap_engine.video import probe_video, transcode


def mark(frame: np.ndarray) -> np.ndarray:
    """A visible per-frame change (a filled red square), standing in for the swap in plumbing tests."""
    out = frame.copy()
    cv2.rectangle(out, (2, 2), (21, 21), (0, 0, 255), -1)
    return out


def streams_of(path: Path) -> dict[str, object]:
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]
        audio = c.streams.audio[0].codec_context.name if c.streams.audio else None
        return {
            "frames": len(frames),
            "first": frames[0],
            "codec": v.codec_context.name,
            "pix_fmt": v.codec_context.format.name,
            "size": (v.codec_context.width, v.codec_context.height),
            "rate": v.average_rate,
            "audio": audio,
            "duration": c.duration / av.time_base if c.duration else 0.0,
            "format": c.format.name,
        }


def test_megamind_keeps_frames_duration_and_audio(tmp_path: Path) -> None:
    src = sample_media.megamind_video()
    progress: list[tuple[int, int]] = []
    result = transcode(src, tmp_path / "out.mp4", mark, progress=lambda d, t: progress.append((d, t)))
    assert result.frames_in == 270 and result.frames_out == 270
    assert result.audio == "aac" and result.warning is None
    assert result.fps_out == Fraction(2997, 125)
    out = streams_of(tmp_path / "out.mp4")
    assert out["frames"] == 270
    assert out["codec"] == "h264" and out["pix_fmt"] == "yuv420p" and out["audio"] == "aac"
    assert "mp4" in str(out["format"])
    assert abs(float(out["duration"]) - 270 / (2997 / 125)) < 0.1
    first = out["first"]
    assert first[10, 10, 2] > 200 and first[10, 10, 0] < 60  # the frame function's red square survived
    assert progress[-1] == (270, 270) and len(progress) == 270
    assert result.processing_time_ms > 0


def test_megamind_bugy_is_processed_with_fps_cap(tmp_path: Path) -> None:
    """Megamind_bugy.avi (30 fps header, no audio) decodes cleanly with FFmpeg 7: it is valid input, capped to 25."""
    result = transcode(sample_media.megamind_damaged_video(), tmp_path / "out.mp4", mark)
    assert result.frames_in == 270 and result.frames_out == 225
    assert result.warning == "FPS reduced from 30 to 25"
    assert streams_of(tmp_path / "out.mp4")["frames"] == 225


@pytest.mark.parametrize(("fps", "frames", "expected", "label"), [(30, 30, 25, "30"), (50, 20, 10, "50"),
                                                                   (Fraction(30000, 1001), 30, 25, "29.97")])
def test_fps_cap_drops_frames_evenly(tmp_path: Path, fps: Fraction, frames: int, expected: int, label: str) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=frames, fps=fps)
    result = transcode(clip, tmp_path / "out.mp4", mark)
    assert result.frames_out == expected
    assert result.fps_out == 25
    assert result.warning == f"FPS reduced from {label} to 25"
    out = streams_of(tmp_path / "out.mp4")
    assert out["frames"] == expected and out["rate"] == 25
    assert abs(float(out["duration"]) - frames / float(fps)) < 0.1  # duration kept


def test_duration_cap_truncates_with_warning(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=50, fps=25)
    result = transcode(clip, tmp_path / "out.mp4", mark, max_duration_s=1.0)
    assert result.frames_out == 25
    assert result.warning is not None and "truncated" in result.warning and "minutes" in result.warning
    out = streams_of(tmp_path / "out.mp4")
    assert out["frames"] == 25 and float(out["duration"]) < 1.2


@pytest.mark.parametrize("ext", sorted(SEED_CONTAINERS))
def test_every_seed_container_is_accepted(tmp_path: Path, ext: str) -> None:
    clip = make_clip(tmp_path / f"in.{ext}", frames=8, fps=25, container=ext)
    assert probe_video(clip).container != "" and clip.stat().st_size > 0
    result = transcode(clip, tmp_path / "out.mp4", mark)
    assert result.frames_out == 8
    expected_audio = "copy" if SEED_CONTAINERS[ext][2] in ("aac", "libmp3lame") else "aac"
    assert result.audio == expected_audio, (ext, result)
    out = streams_of(tmp_path / "out.mp4")
    assert out["frames"] == 8 and out["codec"] == "h264"
    assert str(out["audio"]).startswith("mp3" if ext == "mkv" else "aac")


def test_mp3_audio_is_copied_not_reencoded(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mkv", frames=8, container="mkv")
    result = transcode(clip, tmp_path / "out.mp4", mark)
    assert result.audio == "copy"
    with av.open(str(tmp_path / "out.mp4")) as c:
        assert c.streams.audio[0].codec_context.name.startswith("mp3")


def test_odd_dimensions_become_even(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mkv", frames=5, size=(101, 75), container="mkv", video_codec="mpeg4",
                     audio_codec=None)
    result = transcode(clip, tmp_path / "out.mp4", mark)
    assert (result.width, result.height) == (100, 74)
    out = streams_of(tmp_path / "out.mp4")
    assert out["size"] == (100, 74) and out["audio"] is None


def test_truncated_file_is_corrupt_media(tmp_path: Path) -> None:
    data = sample_media.megamind_video().read_bytes()
    bad = tmp_path / "truncated.avi"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMedia, match="truncated"):
        transcode(bad, tmp_path / "out.mp4", mark)
    assert not (tmp_path / "out.mp4").exists()


def test_truncated_mp4_without_moov_is_corrupt_media(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=10)
    data = clip.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptMedia):
        transcode(tmp_path / "cut.mp4", tmp_path / "out.mp4", mark)


def test_garbage_is_corrupt_media(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(bytes(range(256)) * 200)
    with pytest.raises(CorruptMedia):
        transcode(junk, tmp_path / "out.mp4", mark)
    with pytest.raises(CorruptMedia):
        probe_video(junk)


def test_audio_only_file_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        a = out.add_stream("aac", rate=48000)
        a.codec_context.layout = "stereo"
        samples = np.zeros((2, 1024), np.float32)
        for i in range(10):
            f = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            f.sample_rate, f.pts, f.time_base = 48000, i * 1024, Fraction(1, 48000)
            out.mux(a.encode(f))
        out.mux(a.encode(None))
    with pytest.raises(UnsupportedFormat):
        transcode(path, tmp_path / "out.mp4", mark)


def test_cancellation_stops_and_removes_output(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=60)
    seen: list[int] = []
    with pytest.raises(Cancelled):
        transcode(clip, tmp_path / "out.mp4", mark, progress=lambda d, t: seen.append(d), cancel=lambda: len(seen) >= 5)
    assert not (tmp_path / "out.mp4").exists()
    assert len(seen) < 60


def test_frame_function_error_propagates(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "in.mp4", frames=20)

    def boom(frame: np.ndarray) -> np.ndarray:
        raise RuntimeError("frame work failed")

    with pytest.raises(RuntimeError, match="frame work failed"):
        transcode(clip, tmp_path / "out.mp4", boom)
    assert not (tmp_path / "out.mp4").exists()


def test_probe(tmp_path: Path) -> None:
    info = probe_video(sample_media.megamind_video())
    assert (info.width, info.height, info.frames) == (720, 528, 270)
    assert info.audio_codec == "ac3" and info.video_codec == "mpeg4"


@pytest.mark.parametrize(("rotation", "corner"), [(90, "bl"), (-90, "tr"), (180, "br")])
def test_phone_rotation_is_applied_so_faces_are_upright(tmp_path: Path, rotation: int, corner: str) -> None:
    """Phone videos are stored sideways with a display matrix: frame_fn must see (and the output keep) upright pixels."""
    clip = make_clip(tmp_path / "in.mov", frames=3, size=(96, 64), container="mov", rotation=rotation,
                     audio_codec=None)
    shapes: list[tuple[int, ...]] = []
    result = transcode(clip, tmp_path / "out.mp4", lambda f: (shapes.append(f.shape), f)[1])
    expected = (64, 96) if rotation in (90, -90) else (96, 64)
    assert (result.width, result.height) == expected and shapes[0][:2] == expected[::-1]
    with av.open(str(tmp_path / "out.mp4")) as c:
        a = next(c.decode(video=0)).to_ndarray(format="bgr24")
    h, w = a.shape[:2]
    at = {"tl": a[2, 2], "tr": a[2, w - 3], "bl": a[h - 3, 2], "br": a[h - 3, w - 3]}
    red = [k for k, v in at.items() if v[2] > 200 and v[0] < 80 and v[1] < 80]
    assert red == [corner]
