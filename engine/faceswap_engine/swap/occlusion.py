"""Hands in front of the face: palm detection on a face-centred crop, then 21 hand landmarks per palm; the
dilated convex hull of each hand is carved out of the face mask so the hand stays in front.

Both models come from the mediapipe 0.10.21 wheel (files only) and run with ai-edge-litert. Detecting on a
crop ~3× the face (not the whole frame) finds the hands that matter and avoids far-away false positives.
"""

from __future__ import annotations

import cv2
import numpy as np

from .anchors import ssd_anchors
from .detector import decode_ssd, letterbox, to_image
from .mesh import Roi
from .model_files import HAND_LANDMARK, PALM_DETECTION, locate
from .tflite import TfliteModel

WRIST, MIDDLE_MCP = 0, 2  # palm keypoints that set the hand's rotation


class PalmDetector:
    def __init__(self, min_score: float = 0.5) -> None:
        self.model = TfliteModel(locate(PALM_DETECTION))
        self.size = self.model.input_size[0]
        self.anchors = ssd_anchors(self.size, [8, 16, 16, 16], [2, 2, 2, 2])
        self.min_score = min_score
        self._reg = 0 if self.model.output_shapes[0][-1] == 18 else 1

    def __call__(self, image_bgr: np.ndarray) -> list[tuple[np.ndarray, float, np.ndarray]]:
        """[(box x0,y0,x1,y1, score, 7 keypoints)] in ``image_bgr`` pixels."""
        tensor, scale, px, py = letterbox(image_bgr, self.size)
        outs = self.model.run(tensor[None])
        found = decode_ssd(outs[self._reg][0], outs[1 - self._reg][0, :, 0], self.anchors, self.size,
                           self.min_score, keypoints=7)
        return [(to_image(box, scale, px, py), score, to_image(kps, scale, px, py)) for box, score, kps in found]


def hand_roi(box: np.ndarray, kps: np.ndarray) -> Roi:
    """MediaPipe's palm→hand crop: rotate so the fingers point up, shift towards them, enlarge 2.6×."""
    d = kps[MIDDLE_MCP] - kps[WRIST]
    angle = float(np.arctan2(d[1], d[0]) + np.pi / 2)
    size = float(max(box[2] - box[0], box[3] - box[1]))
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    cx += 0.5 * size * np.sin(angle)
    cy -= 0.5 * size * np.cos(angle)
    return Roi(float(cx), float(cy), size * 2.6, angle)


class HandLandmarks:
    def __init__(self, min_presence: float = 0.5) -> None:
        self.model = TfliteModel(locate(HAND_LANDMARK))
        self.size = self.model.input_size[0]
        self.min_presence = min_presence

    def __call__(self, image_bgr: np.ndarray, roi: Roi) -> np.ndarray | None:
        """(21, 2) landmarks in image pixels, or None when the crop holds no hand."""
        m = roi.crop_to_image(self.size)
        crop = cv2.warpAffine(image_bgr, m, (self.size, self.size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
        tensor = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB).astype(np.float32) * (1.0 / 255.0)
        outs = self.model.run(tensor[None])
        landmarks, presence = outs[0].reshape(-1), float(outs[1].reshape(-1)[0])
        if not 0.0 <= presence <= 1.0:
            presence = 1.0 / (1.0 + np.exp(-presence))
        if presence < self.min_presence:
            return None
        pts = landmarks.reshape(21, 3)[:, :2]
        return (pts @ m[:, :2].T + m[:, 2]).astype(np.float32)


def dilated_hull(points: np.ndarray, grow: float = 0.12) -> np.ndarray:
    """Convex hull of the hand grown by ``grow`` × hand size (fingers are thicker than their joints)."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    centre = hull.mean(0)
    size = float(max(points.max(0) - points.min(0)))
    d = hull - centre
    norm = np.linalg.norm(d, axis=1, keepdims=True) + 1e-6
    return (hull + d / norm * grow * size).astype(np.float32)


class HandOccluder:
    """Finds hands around a face and returns their (dilated) outlines as polygons in frame pixels."""

    def __init__(self) -> None:
        self.palms = PalmDetector()
        self.hands = HandLandmarks()

    def hand_hulls(self, frame: np.ndarray, face_points: np.ndarray, crop_scale: float = 3.0) -> list[np.ndarray]:
        lo, hi = face_points.min(0), face_points.max(0)
        centre, side = (lo + hi) / 2, float(max(hi - lo)) * crop_scale
        h, w = frame.shape[:2]
        x0, y0 = int(max(0, centre[0] - side / 2)), int(max(0, centre[1] - side / 2))
        x1, y1 = int(min(w, centre[0] + side / 2)), int(min(h, centre[1] + side / 2))
        if x1 - x0 < 16 or y1 - y0 < 16:
            return []
        hulls = []
        for box, _score, kps in self.palms(frame[y0:y1, x0:x1])[:2]:
            offset = np.array([x0, y0], np.float32)
            roi = hand_roi(box + np.r_[offset, offset], kps + offset)
            pts = self.hands(frame, roi)
            if pts is not None:
                hulls.append(dilated_hull(pts))
        return hulls
