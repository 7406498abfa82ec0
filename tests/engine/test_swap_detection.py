"""BlazeFace finds the faces of real photos and Face Mesh puts its points on them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_engine.swap.detector import FaceDetector
from faceswap_engine.swap.landmarks import LEFT_EYE_OUTER, NOSE_TIP, RIGHT_EYE_OUTER, UPPER_LIP_INNER
from faceswap_engine.swap.mesh import FaceMesh
from faceswap_engine.swap.session import still_faces


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="module")
def mesh() -> FaceMesh:
    return FaceMesh()


@pytest.mark.parametrize("name", ["astronaut_bgr", "grace_hopper_bgr", "male_portrait_bgr", "messi_bgr"])
def test_single_face_photos(request, detector, mesh, name) -> None:
    image = request.getfixturevalue(name)
    assert len(still_faces(detector, mesh, image)) == 1  # candidates pass the mesh's presence check
    faces = detector.detect(image)
    x0, y0, x1, y1 = faces[0].box  # the best candidate is the face
    assert 0 <= x0 < x1 <= image.shape[1] and 0 <= y0 < y1 <= image.shape[0]


def test_astronaut_box_is_on_her_face(detector, astronaut_bgr) -> None:
    (face,) = detector.detect(astronaut_bgr)
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    assert 200 < cx < 260 and 95 < cy < 150  # her face is around (226, 122) in the 512² photo


def test_group_photo_finds_at_least_five_of_six(detector, group_photo_bgr) -> None:
    faces = detector.detect(group_photo_bgr)
    assert 5 <= len(faces) <= 6
    centres = [((f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2) for f in faces]
    for i, a in enumerate(centres):  # distinct faces, not duplicates of one
        for b in centres[i + 1 :]:
            assert np.hypot(a[0] - b[0], a[1] - b[1]) > 60


def test_landmarks_land_on_the_face(detector, mesh, male_portrait_bgr, astronaut_bgr) -> None:
    for image in (male_portrait_bgr, astronaut_bgr):
        (points,) = still_faces(detector, mesh, image)
        (face,) = detector.detect(image)
        x0, y0, x1, y1 = face.box
        w = x1 - x0
        assert points.shape == (468, 2)
        # eyes above nose above mouth, right eye (image-left) left of left eye, all near the detector's box
        assert points[RIGHT_EYE_OUTER, 0] < points[NOSE_TIP, 0] < points[LEFT_EYE_OUTER, 0]
        assert points[RIGHT_EYE_OUTER, 1] < points[NOSE_TIP, 1] < points[UPPER_LIP_INNER, 1]
        inside = (points[:, 0] > x0 - 0.2 * w) & (points[:, 0] < x1 + 0.2 * w)
        inside &= (points[:, 1] > y0 - 0.3 * w) & (points[:, 1] < y1 + 0.2 * w)
        assert inside.mean() > 0.98
        # BlazeFace's eye keypoints agree with the mesh's eye corners' midpoints
        eye_mid = (points[RIGHT_EYE_OUTER] + points[133]) / 2
        assert np.linalg.norm(eye_mid - face.keypoints[0]) < 0.12 * w


def test_small_face_landmarks(detector, mesh, messi_bgr) -> None:
    (points,) = still_faces(detector, mesh, messi_bgr)
    size = points.max(0) - points.min(0)
    assert 15 < size.max() < 60  # a ~35 px face


def test_enormous_image_is_downscaled_for_detection(detector, mesh, astronaut_bgr) -> None:
    big = cv2.resize(astronaut_bgr, (6000, 6000), interpolation=cv2.INTER_LINEAR)
    (face,) = detector.detect(big)
    cx = (face.box[0] + face.box[2]) / 2
    assert 200 * 6000 / 512 < cx < 260 * 6000 / 512
    (points,) = still_faces(detector, mesh, big)
    assert (points.max(0) - points.min(0)).max() > 800
