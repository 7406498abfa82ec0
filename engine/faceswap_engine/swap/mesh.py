"""Face Mesh: 468 landmarks from a rotated square crop around the face (MediaPipe's face_landmark.tflite).

The crop is set from a detection (eye line for rotation, box ×1.5) or, while tracking, from the previous
frame's landmarks, so the detector need not run every frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .detector import Detection
from .landmarks import eye_angle
from .model_files import FACE_LANDMARK, locate
from .tflite import TfliteModel

@dataclass(frozen=True)
class Roi:
    """A rotated square in image pixels: centre, side and rotation (radians, image y down)."""

    cx: float
    cy: float
    size: float
    angle: float

    def crop_to_image(self, crop_px: int) -> np.ndarray:
        """2×3 affine mapping crop pixels to image pixels."""
        s = self.size / crop_px
        c, si = np.cos(self.angle) * s, np.sin(self.angle) * s
        half = crop_px / 2.0
        return np.array(
            [[c, -si, self.cx - c * half + si * half], [si, c, self.cy - si * half - c * half]], np.float64
        )


def _angle(p_from: np.ndarray, p_to: np.ndarray) -> float:
    return float(np.arctan2(p_to[1] - p_from[1], p_to[0] - p_from[0]))


def roi_from_detection(det: Detection, scale: float = 1.5) -> Roi:
    x0, y0, x1, y1 = det.box
    angle = _angle(det.keypoints[0], det.keypoints[1])
    return Roi((x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0) * scale, angle)


def roi_from_landmarks(points: np.ndarray, scale: float = 1.5) -> Roi:
    """Crop for the next frame: box of the landmarks in the eye-aligned frame, ×1.5, square."""
    angle = eye_angle(points)
    c, s = np.cos(-angle), np.sin(-angle)
    rot = points @ np.array([[c, s], [-s, c]], np.float32)
    lo, hi = rot.min(0), rot.max(0)
    mid = (lo + hi) / 2
    centre = mid @ np.array([[c, -s], [s, c]], np.float32)
    return Roi(float(centre[0]), float(centre[1]), float(max(hi - lo)) * scale, angle)


@dataclass(frozen=True)
class MeshResult:
    points: np.ndarray  # (468, 2) float32 image pixels
    z: np.ndarray  # (468,) relative depth in image pixels (smaller = closer to the camera)
    presence: float  # probability that the crop holds a face


class FaceMesh:
    """Runs the 468-point model on a rotated crop."""

    def __init__(self) -> None:
        self.model = TfliteModel(locate(FACE_LANDMARK))
        self.size = self.model.input_size[0]
        self._pts_idx = 0 if self.model.output_shapes[0][-1] == 1404 else 1

    def __call__(self, image_bgr: np.ndarray, roi: Roi) -> MeshResult:
        m = roi.crop_to_image(self.size)
        crop = cv2.warpAffine(
            image_bgr, m, (self.size, self.size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
        )
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * (1.0 / 255.0)
        outs = self.model.run(tensor[None])
        raw = outs[self._pts_idx].reshape(468, 3)
        logit = float(outs[1 - self._pts_idx].reshape(-1)[0])
        pts = raw[:, :2] @ m[:, :2].T.astype(np.float32) + m[:, 2].astype(np.float32)
        z = raw[:, 2] * (roi.size / self.size)
        return MeshResult(pts.astype(np.float32), z.astype(np.float32), float(1 / (1 + np.exp(-np.clip(logit, -50, 50)))))
