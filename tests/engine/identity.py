"""An identity measure independent of the engine: dlib's 128-D face descriptor (face-recognition-models, CC0 5-point).

dlib's own convention: two descriptors of the same person are usually closer than 0.6 (Euclidean). The quality
tests only compare distances (closer to the source than to the target), so the absolute threshold never matters.
A descriptor costs 100-150 ms on this CPU: compute it once per face.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import dlib
import face_recognition_models
import numpy as np


@dataclass(frozen=True)
class FaceIdentity:
    box: tuple[int, int, int, int]  # x1, y1, x2, y2
    descriptor: np.ndarray  # 128

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def size(self) -> int:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


@lru_cache(maxsize=1)
def _models() -> tuple[object, object, object]:
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(face_recognition_models.pose_predictor_five_point_model_location())
    encoder = dlib.face_recognition_model_v1(face_recognition_models.face_recognition_model_location())
    return detector, shapes, encoder


def _rect(box: tuple[float, float, float, float]) -> dlib.rectangle:
    return dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))


def face_boxes(image_bgr: np.ndarray, upsample: int = 1) -> list[tuple[int, int, int, int]]:
    """dlib HOG face boxes, most confident first."""
    detector, _, _ = _models()
    rgb = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB)
    rects, scores, _ = detector.run(rgb, upsample, 0.0)
    ranked = sorted(zip(scores, rects, strict=True), key=lambda sr: -sr[0])
    return [(r.left(), r.top(), r.right(), r.bottom()) for _, r in ranked]


def descriptor_at(image_bgr: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The 128-D descriptor of the face in ``box`` (5-point alignment, no jitter)."""
    _, shapes, encoder = _models()
    rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    shape = shapes(rgb, _rect(box))
    return np.asarray(encoder.compute_face_descriptor(rgb, shape, 0), dtype=np.float64)


def five_points(image_bgr: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """dlib's 5 points (two corners per eye, nose base) as insightface's 5 (eye centres, nose, mouth corners).

    Mouth corners are not among dlib's points; they are extrapolated below the nose. Good enough to point a tiny
    test detector at a real face.
    """
    _, shapes, _ = _models()
    rgb = np.ascontiguousarray(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    shape = shapes(rgb, _rect(box))
    p = np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)
    # dlib 5-point order: right eye outer, right eye inner, left eye outer, left eye inner, nose (subject's sides)
    eye_a, eye_b = (p[0] + p[1]) / 2, (p[2] + p[3]) / 2
    left, right = (eye_a, eye_b) if eye_a[0] < eye_b[0] else (eye_b, eye_a)
    nose = p[4]
    eye_mid = (left + right) / 2
    down = nose - eye_mid
    across = right - left
    mouth_mid = eye_mid + down * 1.9
    return np.array([left, right, nose - down * 0.3, mouth_mid - across * 0.4, mouth_mid + across * 0.4])


def identities(image_bgr: np.ndarray, upsample: int = 1) -> list[FaceIdentity]:
    """Every face dlib finds, with its descriptor, most confident first."""
    return [FaceIdentity(b, descriptor_at(image_bgr, b)) for b in face_boxes(image_bgr, upsample)]


def main_identity(image_bgr: np.ndarray, upsample: int = 1) -> FaceIdentity:
    """The most confident face among the large ones; AssertionError when dlib finds none."""
    boxes = face_boxes(image_bgr, upsample)
    assert boxes, "dlib found no face"
    biggest = max((b[2] - b[0]) * (b[3] - b[1]) for b in boxes)
    box = next(b for b in boxes if (b[2] - b[0]) * (b[3] - b[1]) >= 0.5 * biggest)
    return FaceIdentity(box, descriptor_at(image_bgr, box))


def distance(a: np.ndarray | FaceIdentity, b: np.ndarray | FaceIdentity) -> float:
    da = a.descriptor if isinstance(a, FaceIdentity) else a
    db = b.descriptor if isinstance(b, FaceIdentity) else b
    return float(np.linalg.norm(np.asarray(da) - np.asarray(db)))


def nearest(faces: list[FaceIdentity], center: tuple[float, float]) -> FaceIdentity | None:
    """The face whose centre is closest to ``center`` (to pair a face before and after a swap)."""
    if not faces:
        return None
    return min(faces, key=lambda f: (f.center[0] - center[0]) ** 2 + (f.center[1] - center[1]) ** 2)


def load_photo(name: str) -> np.ndarray:
    """A sample photo by its ``faceswap_engine.sample_media`` function name; MissingSampleMedia if absent."""
    from faceswap_engine import sample_media

    path = getattr(sample_media, name)()
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"{path} could not be decoded"
    if name == "tom_hanks":  # a 112x112 aligned crop: give detectors some context
        image = cv2.copyMakeBorder(image, 56, 56, 56, 56, cv2.BORDER_REPLICATE)
    return image


@lru_cache(maxsize=16)
def photo_identity(name: str) -> FaceIdentity:
    """Main face of a sample photo (cached: a descriptor is computed once per face per test run)."""
    return main_identity(load_photo(name))


@dataclass(frozen=True)
class SwapVerdict:
    """Where a swapped face landed between its source and the face it replaced."""

    case: str
    to_source: float
    to_target: float

    @property
    def ok(self) -> bool:
        return self.to_source < self.to_target

    def __str__(self) -> str:
        verdict = "ok" if self.ok else "FAIL"
        return f"{self.case}: d(source)={self.to_source:.3f} d(target)={self.to_target:.3f} {verdict}"


def judge(case: str, swapped_bgr: np.ndarray, source: FaceIdentity, target: FaceIdentity) -> SwapVerdict:
    """Descriptor of the face in ``swapped`` nearest the target's position, compared with both identities."""
    boxes = face_boxes(swapped_bgr)
    assert boxes, f"{case}: dlib finds no face at all in the swapped image"
    tx, ty = target.center
    box = min(boxes, key=lambda b: ((b[0] + b[2]) / 2 - tx) ** 2 + ((b[1] + b[3]) / 2 - ty) ** 2)
    moved = float(np.hypot((box[0] + box[2]) / 2 - tx, (box[1] + box[3]) / 2 - ty))
    assert moved < target.size * 0.5, f"{case}: dlib finds no face where the target was (nearest: {moved:.0f}px away)"
    swapped = descriptor_at(swapped_bgr, box)
    return SwapVerdict(case, distance(swapped, source), distance(swapped, target))
