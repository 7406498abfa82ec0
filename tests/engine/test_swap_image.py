"""Image swaps on real photos: the face changes, the rest does not, bad inputs give clear outcomes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_engine import sample_media
from faceswap_engine.errors import NoFaceInSource
from faceswap_engine.swap import FaceSwapSession, SourceFace, SwapOptions, pose, swap_image
from faceswap_engine.swap.detector import FaceDetector
from faceswap_engine.swap.gender import GenderClassifier
from faceswap_engine.swap.mask import mask_region
from faceswap_engine.swap.mesh import FaceMesh
from faceswap_engine.swap.session import still_faces


@pytest.fixture(scope="module")
def finder():
    detector, mesh = FaceDetector(), FaceMesh()
    return lambda image: still_faces(detector, mesh, image)


def _face_and_outside(image: np.ndarray, points: np.ndarray, margin: int = 4) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = mask_region(points, image.shape)
    inside = np.zeros(image.shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    core = np.zeros_like(inside)
    w, h = x1 - x0, y1 - y0
    core[y0 + h // 3 : y1 - h // 4, x0 + w // 4 : x1 - w // 4] = True  # cheeks, nose, mouth
    far = np.ones_like(inside)
    far[max(0, y0 - margin) : y1 + margin, max(0, x0 - margin) : x1 + margin] = False
    return core, far


def test_swap_changes_the_face_and_nothing_else(finder, astronaut_bgr, male_portrait_bgr) -> None:
    out, warnings = swap_image([SourceFace(astronaut_bgr)], male_portrait_bgr)
    assert warnings == []
    assert out.shape == male_portrait_bgr.shape and out.dtype == np.uint8
    (points,) = finder(male_portrait_bgr)
    core, far = _face_and_outside(male_portrait_bgr, points)
    diff = np.abs(out.astype(int) - male_portrait_bgr.astype(int)).sum(2)
    assert diff[core].mean() > 12  # the face is really replaced
    assert np.array_equal(out[far], male_portrait_bgr[far])  # background, hair, shirt untouched
    (after,) = finder(out)  # still a face, in the same place
    assert np.abs(after - points).mean() < 0.05 * (points.max(0) - points.min(0)).max()


def test_swap_transfers_identity_cues(finder, astronaut_bgr, male_portrait_bgr) -> None:
    """The CC0 gender model flips with the swap: a man's face on the astronaut reads male.

    (The reverse is not asserted: the man's hair and jaw outside the swapped oval keep that chip "male".
    dlib-descriptor identity tests live with the ONNX tier's tests.)"""
    classify = GenderClassifier()
    assert classify(astronaut_bgr, finder(astronaut_bgr)[0])[0] == "female"
    out, _ = swap_image([SourceFace(male_portrait_bgr)], astronaut_bgr)
    assert classify(out, finder(out)[0])[0] == "male"


def test_source_without_face_raises(astronaut_bgr, male_portrait_bgr) -> None:
    no_face = np.ascontiguousarray(astronaut_bgr[330:512, 0:180])  # the flag and the suit
    with pytest.raises(NoFaceInSource) as info:
        swap_image([SourceFace(no_face)], male_portrait_bgr)
    assert info.value.loc == ["source_face_url"]
    assert info.value.as_detail()["loc"] == ["body", "source_face_url"]
    with pytest.raises(NoFaceInSource) as info:
        FaceSwapSession([SourceFace(astronaut_bgr, "female"), SourceFace(no_face, "male")])
    assert info.value.loc == ["source_face_url_2"]
    with pytest.raises(NoFaceInSource) as info:
        FaceSwapSession([SourceFace(np.full((256, 256, 3), 128, np.uint8), "female")])
    assert info.value.loc == ["source_face_url_1"]


def test_target_without_face_is_returned_unchanged_with_a_warning(astronaut_bgr) -> None:
    target = np.ascontiguousarray(astronaut_bgr[330:512, 0:180])
    out, warnings = swap_image([SourceFace(astronaut_bgr)], target)
    assert np.array_equal(out, target) and out is not target
    assert len(warnings) == 1 and "no face" in warnings[0].lower()


def test_prealigned_crop_as_source(male_portrait_bgr) -> None:
    """Tom Hanks' 112² ArcFace crop fills the frame; the source finder pads it and still finds the face."""
    hanks = cv2.imread(str(sample_media.tom_hanks()))
    out, warnings = swap_image([SourceFace(hanks)], male_portrait_bgr)
    assert warnings == [] and not np.array_equal(out, male_portrait_bgr)


def test_enormous_image(finder, astronaut_bgr, male_portrait_bgr) -> None:
    big = cv2.resize(astronaut_bgr, (5000, 5000), interpolation=cv2.INTER_LINEAR)
    out, warnings = swap_image([SourceFace(male_portrait_bgr)], big, SwapOptions())
    assert warnings == [] and out.shape == big.shape
    assert np.array_equal(out[:550], big[:550])  # far above the face: untouched
    face = (slice(1200, 1600), slice(2000, 2500))  # her cheeks and nose at this scale
    assert np.abs(out[face].astype(int) - big[face].astype(int)).mean() > 8


def test_face_turned_too_far_is_left_alone_with_a_warning(group_photo_bgr, astronaut_bgr, monkeypatch) -> None:
    """The standing man looks far to the side (~40° by the mesh): swapped on a photo with today's limit; with a
    limit of 30° he counts as turned too far, and the photo comes back unchanged with a warning."""
    target = np.ascontiguousarray(group_photo_bgr[0:300, 780:1100])
    out, warnings = swap_image([SourceFace(astronaut_bgr)], target)
    assert warnings == [] and not np.array_equal(out, target)
    monkeypatch.setattr(pose, "STILL_MAX_DEG", 30.0)
    out, warnings = swap_image([SourceFace(astronaut_bgr)], target)
    assert np.array_equal(out, target)
    assert len(warnings) == 1 and "turned" in warnings[0]


@pytest.mark.parametrize("shape", [(1, 500, 3), (3000, 2, 3), (16, 16, 3)])
def test_degenerate_targets_do_not_crash(astronaut_bgr, shape) -> None:
    target = np.zeros(shape, np.uint8)
    out, warnings = swap_image([SourceFace(astronaut_bgr)], target)
    assert np.array_equal(out, target) and len(warnings) == 1


def test_wrong_frame_layout_is_refused(astronaut_bgr) -> None:
    session = FaceSwapSession([SourceFace(astronaut_bgr)])
    with pytest.raises(ValueError):
        session.process_frame(np.zeros((10, 10), np.uint8))
