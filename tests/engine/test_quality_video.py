"""Identity transfer on video frames: a FaceSwapSession runs over consecutive frames (tracking, smoothing,
fading all active) and sampled frames are judged with dlib's descriptor (see identity.py).

Two clips: the real Megamind.avi (opencv-doc; a CGI face, decoded with PyAV) and a clip made in memory from a
still photo moved, rotated and scaled over time (no real live-action video ships in any package).
"""

from __future__ import annotations

import av
import cv2
import numpy as np
from identity import SwapVerdict, judge, load_photo, main_identity, photo_identity

from faceswap_engine import sample_media
from faceswap_engine.swap import FaceSwapSession, SourceFace

MEGAMIND_FRAMES = 120  # 5 s at 23.976 fps
MEGAMIND_SAMPLES = (24, 39, 55, 71, 87, 103, 119)
FULL_STRENGTH = 0.95  # swap opacity at which a frame shows the swap undimmed (turned faces are faded on purpose)
TIE_MARGIN = 0.02  # descriptor distances this close are a tie (seen on Megamind's CGI face turned ~30 degrees)
STILL_FRAMES = 30
STILL_SAMPLES = (8, 19, 29)


def _run(
    frames: list[np.ndarray], samples: tuple[int, ...], source: str, clip: str
) -> list[tuple[SwapVerdict, float]]:
    """Each sampled frame's verdict with the swap's opacity on that frame (the engine fades faces turned too far)."""
    session = FaceSwapSession([SourceFace(load_photo(source))])
    verdicts = []
    for index, frame in enumerate(frames):
        out = session.process_frame(frame)
        assert out.shape == frame.shape and out.dtype == frame.dtype
        if index in samples:
            case = f"video {clip} frame {index}, source {source}"
            opacity = max((face.alpha for face in session.faces() if face.live), default=0.0)
            verdicts.append((judge(case, out, photo_identity(source), main_identity(frame)), opacity))
    print("\n" + "\n".join(f"{v} (swap opacity {a:.2f})" for v, a in verdicts))
    assert session.stats.frames == len(frames)
    return verdicts


def _assert_identity_transferred(verdicts: list[tuple[SwapVerdict, float]]) -> None:
    """Frames showing the swap at full strength take the source's identity.

    Most sampled frames must show the swap at full strength; of those, at least two thirds must be closer to the
    source, none may be closer to the target by more than a tie, and on average they must be clearly closer to the
    source than to the target.
    """
    report = "\n".join(f"{v} (swap opacity {a:.2f})" for v, a in verdicts)
    full = [v for v, opacity in verdicts if opacity >= FULL_STRENGTH]
    assert len(full) * 2 > len(verdicts), f"most sampled frames should show the swap at full strength:\n{report}"
    assert sum(v.ok for v in full) * 3 >= len(full) * 2, report
    assert all(v.to_source < v.to_target + TIE_MARGIN for v in full), report
    assert np.mean([v.to_source for v in full]) + 0.05 < np.mean([v.to_target for v in full]), report


def test_megamind_frames_take_the_source_identity() -> None:
    frames = []
    with av.open(str(sample_media.megamind_video())) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="bgr24"))
            if len(frames) == MEGAMIND_FRAMES:
                break
    assert len(frames) == MEGAMIND_FRAMES
    _assert_identity_transferred(_run(frames, MEGAMIND_SAMPLES, "male_portrait", "Megamind.avi"))


def moving_still(image: np.ndarray, count: int, size: tuple[int, int] = (960, 540)) -> list[np.ndarray]:
    """Frames of ``image`` drifting, rolling (+-8 degrees) and zooming on a grey canvas, like a handheld shot."""
    frames = []
    h, w = image.shape[:2]
    base = 0.8 * size[1] / h
    for i in range(count):
        t = i / max(1, count - 1)
        angle = 8.0 * np.sin(2 * np.pi * t)
        scale = base * (1.0 + 0.15 * t)
        cx = size[0] / 2 + 120 * np.sin(np.pi * t) - 60
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        matrix[:, 2] += (cx - w / 2, size[1] / 2 - h / 2)
        frames.append(cv2.warpAffine(image, matrix, size, borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 90, 90)))
    return frames


def test_clip_made_from_a_still_takes_the_source_identity() -> None:
    frames = moving_still(load_photo("grace_hopper"), STILL_FRAMES)
    _assert_identity_transferred(_run(frames, STILL_SAMPLES, "astronaut", "moving grace_hopper"))
