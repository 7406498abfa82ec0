"""BlazeFace face detection (MediaPipe full-range and short-range models) with weighted NMS.

The frame is letterboxed to a square (so faces keep their aspect) and downscaled once; the full-range model
(192², 2304 anchors) finds faces down to ~2% of the frame, the short-range one (128²) is for close-ups.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .anchors import ssd_anchors
from .model_files import FACE_DETECTION_FULL, FACE_DETECTION_SHORT, locate
from .tflite import TfliteModel


@dataclass(frozen=True)
class Detection:
    """A face box in image pixels, its score and BlazeFace's 6 keypoints.

    Keypoints (image pixels): 0 right eye (subject's; left in the image), 1 left eye, 2 nose tip, 3 mouth,
    4 right ear tragion, 5 left ear tragion.
    """

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    keypoints: np.ndarray  # (6, 2)

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, float, float, float]:
    """Square ``size``² RGB float image in [0, 1] plus (scale, pad_x, pad_y) to map back: img = (p - pad)/scale."""
    h, w = image.shape[:2]
    scale = size / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    # Large frames: first an integer-factor INTER_AREA (OpenCV's fast path: a plain k×k box average), then
    # the fractional rest; the result matches a direct INTER_AREA closely at a fraction of its cost.
    k = int(1.0 / scale)
    source = cv2.resize(image, (max(1, w // k), max(1, h // k)), interpolation=cv2.INTER_AREA) if k >= 2 else image
    interp = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
    small = cv2.resize(source, (nw, nh), interpolation=interp)
    canvas = np.zeros((size, size, 3), np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py : py + nh, px : px + nw] = small
    rgb = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).astype(np.float32) * (1.0 / 255.0)
    return rgb, scale, float(px), float(py)


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, threshold: float
) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """MediaPipe's weighted NMS: overlapping candidates are averaged, weighted by score. Returns merged rows."""
    order = np.argsort(-scores)
    merged: list[tuple[np.ndarray, float, np.ndarray]] = []
    remaining = order
    while remaining.size:
        best = remaining[0]
        b = boxes[remaining]
        x0 = np.maximum(b[:, 0], boxes[best, 0])
        y0 = np.maximum(b[:, 1], boxes[best, 1])
        x1 = np.minimum(b[:, 2], boxes[best, 2])
        y1 = np.minimum(b[:, 3], boxes[best, 3])
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        iou = inter / np.maximum(area + area[0] - inter, 1e-9)
        group = remaining[iou > threshold]
        w = scores[group][:, None]
        box = (boxes[group] * w).sum(0) / w.sum()
        pts = (points[group] * w[:, :, None]).sum(0) / w.sum()
        merged.append((box, float(scores[best]), pts))
        remaining = remaining[iou <= threshold]
    return merged


class _BlazeFace:
    def __init__(self, path, strides: list[int], per_layer: list[int], min_score: float) -> None:
        self.model = TfliteModel(path)
        self.size = self.model.input_size[0]
        self.anchors = ssd_anchors(self.size, strides, per_layer)
        self.min_score = min_score
        reg_first = self.model.output_shapes[0][-1] == 16
        self._reg_idx, self._cls_idx = (0, 1) if reg_first else (1, 0)

    def __call__(self, image_bgr: np.ndarray) -> list[Detection]:
        tensor, scale, px, py = letterbox(image_bgr, self.size)
        outs = self.model.run((tensor * 2.0 - 1.0)[None])
        found = decode_ssd(outs[self._reg_idx][0], outs[self._cls_idx][0, :, 0], self.anchors, self.size,
                           self.min_score, keypoints=6)
        return [Detection(tuple(float(v) for v in to_image(box, scale, px, py)), score,
                          to_image(kps, scale, px, py).astype(np.float32))
                for box, score, kps in found]


class FaceDetector:
    """Full-range BlazeFace first (small and large faces); short-range as a fallback for tight close-ups.

    The score threshold is a little below MediaPipe's 0.5 because every candidate must also pass the Face
    Mesh's own presence check before it becomes a face (that second gate removes the false positives).
    """

    def __init__(self, min_score: float = 0.4) -> None:
        self.full = _BlazeFace(locate(FACE_DETECTION_FULL), [4], [1], min_score)
        self._short: _BlazeFace | None = None
        self._min_score = min_score

    @property
    def short(self) -> _BlazeFace:
        if self._short is None:
            self._short = _BlazeFace(locate(FACE_DETECTION_SHORT), [8, 16, 16, 16], [2, 2, 2, 2], self._min_score)
        return self._short

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """All faces, largest first. Boxes may extend past the image border."""
        found = self.full(image_bgr)
        if not found:
            found = self.short(image_bgr)
        return sorted(found, key=lambda d: -d.size)


def to_image(coords: np.ndarray, scale: float, pad_x: float, pad_y: float) -> np.ndarray:
    """Letterboxed pixel coordinates (x, y pairs, flattened or not) back to the original image's pixels."""
    pad = np.resize(np.array([pad_x, pad_y]), coords.shape)
    return (coords - pad) / scale


def decode_ssd(raw: np.ndarray, logits: np.ndarray, anchors: np.ndarray, size: int, min_score: float,
               keypoints: int) -> list[tuple[np.ndarray, float, np.ndarray]]:
    """Decode a MediaPipe SSD head (BlazeFace, palm detection) into boxes, scores and keypoints, after NMS.

    ``raw`` holds per-anchor offsets (box centre, size, then ``keypoints`` x/y pairs) in input pixels, ``logits``
    the per-anchor face/palm logit. Results are in letterboxed input pixels; ``to_image`` maps them back.
    """
    logits = np.clip(logits, -100, 100)
    keep = np.nonzero(logits > np.log(min_score / (1 - min_score)))[0]
    if keep.size == 0:
        return []
    offsets = raw[keep] / size
    centres = anchors[keep]
    cx, cy = offsets[:, 0] + centres[:, 0], offsets[:, 1] + centres[:, 1]
    w, h = offsets[:, 2], offsets[:, 3]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    pts = offsets[:, 4:4 + 2 * keypoints].reshape(-1, keypoints, 2) + centres[:, None, :]
    scores = 1.0 / (1.0 + np.exp(-logits[keep]))
    return [(box * size, float(score), kps * size) for box, score, kps in weighted_nms(boxes, scores, pts, 0.3)]
