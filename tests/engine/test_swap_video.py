"""Video behaviour of a session: tracking without per-frame detection, steady output, fade-out, a real clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_engine import sample_media
from faceswap_engine.swap import FaceSwapSession, SourceFace
from faceswap_engine.swap.detector import FaceDetector
from faceswap_engine.swap.mesh import FaceMesh
from faceswap_engine.swap.pose import yaw_weight
from faceswap_engine.swap.session import still_faces


def _canvas(face_photo: np.ndarray, dx: int = 0) -> np.ndarray:
    frame = np.full((480, 640, 3), 90, np.uint8)
    h, w = face_photo.shape[:2]
    frame[80 : 80 + h, 160 + dx : 160 + dx + w] = face_photo
    return frame


@pytest.fixture()
def session(astronaut_bgr) -> FaceSwapSession:
    return FaceSwapSession([SourceFace(astronaut_bgr)])


def test_tracking_runs_detection_rarely(session, male_portrait_bgr) -> None:
    calls = []
    detect = session._detector.detect  # noqa: SLF001
    session._detector.detect = lambda image: calls.append(1) or detect(image)  # noqa: SLF001
    for i in range(30):
        out = session.process_frame(_canvas(male_portrait_bgr, dx=i))
        assert out.shape == (480, 640, 3)
    assert session.stats.frames == 30 and session.stats.frames_with_face == 30
    assert session.stats.faces_swapped == 30 and session.stats.tracks == 1
    assert len(calls) <= 4


def test_static_input_gives_steady_output(session, male_portrait_bgr) -> None:
    frame = _canvas(male_portrait_bgr)
    outs = [session.process_frame(frame).astype(np.int16) for _ in range(12)]
    assert np.abs(outs[-1] - outs[-2]).mean() < 0.3
    assert np.abs(outs[-1] - frame).mean() > 0.5  # and it is swapped (the face is ~4% of the frame)


def test_lost_face_fades_out_without_a_glitch(session, male_portrait_bgr) -> None:
    for _ in range(5):
        session.process_frame(_canvas(male_portrait_bgr))
    (face,) = session.faces()
    assert face.alpha == pytest.approx(1.0, abs=0.2)
    blank = np.full((480, 640, 3), 90, np.uint8)
    alphas, diffs = [], []
    for _ in range(5):
        out = session.process_frame(blank)
        alphas.append(max((f.alpha for f in session.faces()), default=0.0))
        diffs.append(np.abs(out.astype(int) - blank).mean())
    assert all(a > b for a, b in zip(alphas[:3], alphas[1:3]))  # strictly falling
    assert alphas[2] == 0.0 and diffs[2] == 0.0 and diffs[-1] == 0.0
    assert diffs[0] > diffs[1] > 0.0  # a fade, not a cut
    # when the face comes back it is picked up again (the same track) and faded back in
    back = [session.process_frame(_canvas(male_portrait_bgr)) for _ in range(3)]
    diffs = [np.abs(out.astype(int) - _canvas(male_portrait_bgr)).mean() for out in back]
    assert session.stats.tracks == 1 and 0 < diffs[0] < diffs[1] < diffs[2]


def test_turned_faces_are_faded(group_photo_bgr) -> None:
    detector, mesh = FaceDetector(), FaceMesh()
    from faceswap_engine.swap.mesh import roi_from_detection, roi_from_landmarks

    weights = []
    for det in detector.detect(group_photo_bgr):
        r = mesh(group_photo_bgr, roi_from_detection(det))
        r = mesh(group_photo_bgr, roi_from_landmarks(r.points))
        weights.append(yaw_weight(r.points, r.z))
    assert sum(w == 1.0 for w in weights) >= 2  # the two frontal faces
    assert min(weights) < 0.5  # the standing man looks far to the side
    assert len(still_faces(detector, mesh, group_photo_bgr)) == len(weights)


def test_real_clip_is_tracked_and_swapped(astronaut_bgr) -> None:
    capture = cv2.VideoCapture(str(sample_media.megamind_video()))
    session = FaceSwapSession([SourceFace(astronaut_bgr)])
    frames = 0
    while frames < 60:
        ok, frame = capture.read()
        if not ok:
            break
        out = session.process_frame(frame)
        assert out.shape == frame.shape and out.dtype == frame.dtype
        frames += 1
    capture.release()
    assert frames == 60
    stats = session.stats
    assert stats.frames_with_face >= 55 and stats.faces_swapped >= 50 and stats.tracks <= 3
