"""Face detectors with insightface/facefusion tensor contracts: SCRFD (and RetinaFace in the same layout), YOLO-face.

Which output is which is decided from the output shapes of one probe run (last dim 1/4/10 = score/box/keypoints,
row count = cells x anchors of a stride), so models exported with any output names or order work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from .errors import WrongModelShape
from .faces import DetectedFace, nms
from .sessions import TensorSpec, inputs_of, outputs_of

DETECT_SIZE = 640
SCRFD_OUTPUT_COUNTS = (6, 9, 10, 15)


@dataclass(frozen=True)
class _Level:
    stride: int
    score: int  # output indices
    bbox: int
    kps: int | None
    centers: np.ndarray  # (cells * anchors, 2) in detector-input pixels


def letterbox(frame_bgr: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Shrink/enlarge to fit ``size`` (w, h) keeping aspect, pasted top-left on black; returns canvas and scale."""
    height, width = frame_bgr.shape[:2]
    if width * size[1] >= height * size[0]:  # width-limited
        new_w, new_h = size[0], min(size[1], max(1, int(round(height * size[0] / width))))
        scale = new_w / width
    else:
        new_w, new_h = min(size[0], max(1, int(round(width * size[1] / height)))), size[1]
        scale = new_h / height
    canvas = np.zeros((size[1], size[0], 3), dtype=np.uint8)
    canvas[:new_h, :new_w] = cv2.resize(frame_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    return canvas, scale


def looks_like_scrfd(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> bool:
    """One NCHW 3-channel input, 6/9/10/15 outputs whose last dims are only 1, 4 and 10."""
    if len(inputs) != 1 or len(inputs[0].shape) != 4 or inputs[0].dim(1) != 3:
        return False
    if len(outputs) not in SCRFD_OUTPUT_COUNTS:
        return False
    return all(o.dim(-1) in (1, 4, 10, None) for o in outputs)


def looks_like_yoloface(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> bool:
    """One NCHW input, one output [1, 20, anchors] (box 4 + score 1 + 5 keypoints x (x, y, conf))."""
    return (
        len(inputs) == 1
        and len(inputs[0].shape) == 4
        and inputs[0].dim(1) == 3
        and len(outputs) == 1
        and len(outputs[0].shape) == 3
        and outputs[0].dim(1) == 20
    )


class ScrfdDetector:
    """SCRFD / RetinaFace: (x-127.5)/128 at 640x640 letterboxed, anchor-centre distance decoding, NMS, 5 keypoints.

    ``swap_rb``: facefusion feeds BGR (the default here, as the training pipeline read BGR); insightface's own
    wrapper swaps to RGB. Detection quality is nearly the same either way.
    """

    def __init__(
        self,
        session: ort.InferenceSession,
        path: Path,
        *,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
        swap_rb: bool = False,
    ) -> None:
        self.session = session
        self.path = path
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.swap_rb = swap_rb
        spec = inputs_of(session)[0]
        self.input_name = spec.name
        self.size = (spec.dim(3) or DETECT_SIZE, spec.dim(2) or DETECT_SIZE)  # (w, h)
        self.output_names = [o.name for o in outputs_of(session)]
        self.levels = self._probe_levels()

    def _probe_levels(self) -> list[_Level]:
        """Run once on a blank input and map each output to (stride, kind) by its shape."""
        blank = np.zeros((1, 3, self.size[1], self.size[0]), dtype=np.float32)
        shapes = [np.asarray(o).shape for o in self.session.run(self.output_names, {self.input_name: blank})]
        rows = [s[-2] if len(s) >= 2 else -1 for s in shapes]
        kinds = [s[-1] if len(s) >= 2 else -1 for s in shapes]
        bad = lambda why: WrongModelShape(  # noqa: E731
            f"{self.path.name}: not an SCRFD-layout detector ({why}); outputs {shapes}", loc=[self.path.name]
        )
        if any(len(s) not in (2, 3) or (len(s) == 3 and s[0] != 1) for s in shapes):
            raise bad("outputs must be [N, C] or [1, N, C]")
        score_idx = [i for i, k in enumerate(kinds) if k == 1]
        if not score_idx or len(shapes) not in (2 * len(score_idx), 3 * len(score_idx)):
            raise bad("expected one score, box (and keypoint) output per stride")
        score_idx.sort(key=lambda i: -rows[i])
        cells0 = (self.size[0] // 8) * (self.size[1] // 8)
        anchors = rows[score_idx[0]] // cells0 if cells0 else 0
        if anchors < 1 or rows[score_idx[0]] != cells0 * anchors:
            raise bad(f"first level has {rows[score_idx[0]]} rows, not a multiple of {cells0} cells at stride 8")
        levels: list[_Level] = []
        used: set[int] = set(score_idx)
        for level, index in enumerate(score_idx):
            stride = 8 * 2**level
            grid_w, grid_h = self.size[0] // stride, self.size[1] // stride
            count = grid_w * grid_h * anchors
            if rows[index] != count:
                raise bad(f"stride {stride} score has {rows[index]} rows, expected {count}")
            bbox = next((i for i in range(len(shapes)) if i not in used and kinds[i] == 4 and rows[i] == count), None)
            if bbox is None:
                raise bad(f"no box output with {count} rows for stride {stride}")
            used.add(bbox)
            kps = next((i for i in range(len(shapes)) if i not in used and kinds[i] == 10 and rows[i] == count), None)
            if kps is not None:
                used.add(kps)
            ys, xs = np.mgrid[:grid_h, :grid_w]
            centers = np.stack([xs, ys], axis=-1).reshape(-1, 2).astype(np.float32) * stride
            centers = np.repeat(centers, anchors, axis=0)
            levels.append(_Level(stride, index, bbox, kps, centers))
        if len(used) != len(shapes):
            raise bad("some outputs match no stride")
        if any(level.kps is None for level in levels):
            raise bad("no keypoint outputs; a 5-keypoint model (e.g. det_10g, scrfd_*_kps) is required")
        return levels

    def blob(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, float]:
        canvas, scale = letterbox(frame_bgr, self.size)
        if self.swap_rb:
            canvas = canvas[:, :, ::-1]
        blob = (canvas.astype(np.float32) - 127.5) / 128.0
        return blob.transpose(2, 0, 1)[None].copy(), scale

    def detect(self, frame_bgr: np.ndarray) -> list[DetectedFace]:
        """Faces in frame pixels, highest score first."""
        blob, scale = self.blob(frame_bgr)
        outs = [np.asarray(o) for o in self.session.run(self.output_names, {self.input_name: blob})]
        outs = [o.reshape(o.shape[-2], o.shape[-1]) for o in outs]
        boxes, scores, points = [], [], []
        for level in self.levels:
            score = outs[level.score][:, 0]
            keep = np.nonzero(score >= self.score_threshold)[0]
            if keep.size == 0:
                continue
            centers = level.centers[keep]
            dist = outs[level.bbox][keep] * level.stride
            boxes.append(np.concatenate([centers - dist[:, :2], centers + dist[:, 2:]], axis=1))
            scores.append(score[keep])
            kps = outs[level.kps][keep] * level.stride  # type: ignore[index]
            points.append(centers[:, None, :] + kps.reshape(-1, 5, 2))
        if not boxes:
            return []
        all_boxes = np.concatenate(boxes) / scale
        all_scores = np.concatenate(scores)
        all_points = np.concatenate(points) / scale
        keep_idx = nms(all_boxes, all_scores, self.nms_threshold)
        return [DetectedFace(all_boxes[i], float(all_scores[i]), all_points[i]) for i in keep_idx]


class YoloFaceDetector:
    """yoloface_8n: x/255 at 640 letterboxed, output [1, 20, N] = cx, cy, w, h, score, 5 x (x, y, conf)."""

    def __init__(
        self,
        session: ort.InferenceSession,
        path: Path,
        *,
        score_threshold: float = 0.5,
        nms_threshold: float = 0.4,
    ) -> None:
        self.session = session
        self.path = path
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        spec = inputs_of(session)[0]
        self.input_name = spec.name
        self.size = (spec.dim(3) or DETECT_SIZE, spec.dim(2) or DETECT_SIZE)
        self.output_name = outputs_of(session)[0].name

    def detect(self, frame_bgr: np.ndarray) -> list[DetectedFace]:
        canvas, scale = letterbox(frame_bgr, self.size)
        blob = (canvas.astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
        out = np.asarray(self.session.run([self.output_name], {self.input_name: blob})[0])[0].T  # (N, 20)
        keep = np.nonzero(out[:, 4] >= self.score_threshold)[0]
        if keep.size == 0:
            return []
        rows = out[keep]
        cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1) / scale
        kps = rows[:, 5:20].reshape(-1, 5, 3)[:, :, :2] / scale
        scores = rows[:, 4]
        return [DetectedFace(boxes[i], float(scores[i]), kps[i]) for i in nms(boxes, scores, self.nms_threshold)]
