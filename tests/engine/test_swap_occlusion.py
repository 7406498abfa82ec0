"""Occlusion prevention: hand models load and find a real hand; its hull is carved out of the face mask."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_engine.swap import SourceFace, SwapOptions, swap_image
from faceswap_engine.swap.detector import FaceDetector
from faceswap_engine.swap.mesh import FaceMesh
from faceswap_engine.swap.mask import coarse_mask, mask_region
from faceswap_engine.swap.occlusion import HandOccluder
from faceswap_engine.swap.session import still_faces
from faceswap_engine.swap.warp import coarse_shape, upsample


@pytest.fixture(scope="module")
def occluder() -> HandOccluder:
    return HandOccluder()


@pytest.fixture(scope="module")
def faces_of():
    detector, mesh = FaceDetector(), FaceMesh()
    return lambda image: still_faces(detector, mesh, image)


def test_mask_carving_with_a_synthetic_occluder(faces_of, male_portrait_bgr) -> None:
    (points,) = faces_of(male_portrait_bgr)
    region = mask_region(points, male_portrait_bgr.shape)
    x0, y0, x1, y1 = region
    step = 2
    plain = upsample(coarse_mask(points, region, step, coarse_shape(region, step)), region, step)
    nose = points[1]
    hand = np.array([[nose[0] + 4, nose[1] - 6], [nose[0] + 30, nose[1] - 6], [nose[0] + 30, nose[1] + 16],
                     [nose[0] + 4, nose[1] + 16]], np.float32)  # a square over the image-right cheek
    carved = upsample(coarse_mask(points, region, step, coarse_shape(region, step), [hand]), region, step)
    assert plain.shape == (y1 - y0, x1 - x0) and plain.max() == pytest.approx(1.0)
    hx0, hy0 = int(nose[0] - x0), int(nose[1] - y0)
    inside = (slice(hy0 - 4, hy0 + 15), slice(hx0 + 6, hx0 + 29))
    assert plain[inside].min() > 0.5  # the face was there...
    assert carved[inside].max() < 0.1  # ...and the occluder is cut out
    left = (slice(hy0 - 10, hy0 + 15), slice(hx0 - 35, hx0 - 20))  # the other cheek is untouched
    assert np.allclose(carved[left], plain[left])


def test_hand_models_find_a_real_hand(occluder, faces_of, group_photo_bgr) -> None:
    """The man in red holds a poker chip up beside his face (around x=729, y=521 in the group photo)."""
    faces = faces_of(group_photo_bgr)
    man = min(faces, key=lambda p: np.hypot(*(p.mean(0) - (781, 421))))
    hulls = occluder.hand_hulls(group_photo_bgr, man)
    assert len(hulls) >= 1
    centre = hulls[0].mean(0)
    assert np.hypot(centre[0] - 729, centre[1] - 521) < 40
    # the woman on the left holds her cards below her chin: that hand is found and does not cover her face
    woman = min(faces, key=lambda p: np.hypot(*(p.mean(0) - (117, 338))))
    for hull in occluder.hand_hulls(group_photo_bgr, woman):
        assert cv2.pointPolygonTest(hull.reshape(-1, 1, 2), tuple(float(v) for v in woman[1]), False) < 0


def test_hand_in_front_of_the_face_stays_in_front(occluder, faces_of, group_photo_bgr, male_portrait_bgr,
                                                   grace_hopper_bgr) -> None:
    """A real hand cut from the group photo is pasted over the man's cheek; with occlusion on it survives."""
    faces = faces_of(group_photo_bgr)
    man = min(faces, key=lambda p: np.hypot(*(p.mean(0) - (781, 421))))
    (hull,) = occluder.hand_hulls(group_photo_bgr, man)[:1]
    x0, y0 = np.floor(hull.min(0)).astype(int)
    x1, y1 = np.ceil(hull.max(0)).astype(int)
    patch = cv2.resize(group_photo_bgr[y0:y1, x0:x1], None, fx=1.3, fy=1.3)
    shape = np.zeros((y1 - y0, x1 - x0), np.uint8)
    cv2.fillPoly(shape, [np.round(hull - [x0, y0]).astype(np.int32)], 255)
    shape = cv2.resize(shape, (patch.shape[1], patch.shape[0])) > 127
    target = male_portrait_bgr.copy()
    ph, pw = patch.shape[:2]
    top, left = 140, 135  # over the mouth and the image-right cheek
    roi = target[top : top + ph, left : left + pw]
    roi[shape] = patch[shape]
    hand = np.zeros(target.shape[:2], bool)
    hand[top : top + ph, left : left + pw] = shape

    with_occlusion, _ = swap_image([SourceFace(grace_hopper_bgr)], target, SwapOptions(occlusion=True))
    without, _ = swap_image([SourceFace(grace_hopper_bgr)], target, SwapOptions(occlusion=False))

    (points,) = faces_of(target)
    region = mask_region(points, target.shape)
    rx0, ry0, rx1, ry1 = region
    face_alpha = np.zeros(target.shape[:2], np.float32)
    face_alpha[ry0:ry1, rx0:rx1] = upsample(coarse_mask(points, region, 2, coarse_shape(region, 2)), region, 2)
    # the hand's core (its outline is re-detected on the composite, so leave its edge out of the measure)
    core = cv2.erode(hand.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    hand_on_face = core & (face_alpha > 0.9)
    assert hand_on_face.sum() > 800  # the pasted hand really covers part of the face

    def changed(out: np.ndarray, where: np.ndarray) -> float:
        return float((np.abs(out.astype(int) - target.astype(int)).sum(2)[where] > 12).mean())

    print(f"hand-on-face pixels changed: without occlusion {changed(without, hand_on_face):.2f}, "
          f"with {changed(with_occlusion, hand_on_face):.2f} (of {int(hand_on_face.sum())} px)")
    assert changed(without, hand_on_face) > 0.5  # without it the swapped face is painted over the hand
    assert changed(with_occlusion, hand_on_face) < 0.2  # with it the hand stays in front
    assert changed(with_occlusion, (face_alpha > 0.9) & ~hand) > 0.3  # and the rest of the face is swapped
