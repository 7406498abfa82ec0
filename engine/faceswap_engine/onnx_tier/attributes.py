"""genderage.onnx: bbox-centred crop at scale 1.5 to 96x96, raw pixels (mean 0, std 1).

Output: 2 gender logits (female, male) + age/100.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort

from .sessions import TensorSpec, inputs_of, outputs_of

Gender = Literal["female", "male"]


def looks_like_genderage(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> bool:
    return (
        len(inputs) == 1
        and len(inputs[0].shape) == 4
        and inputs[0].dim(1) == 3
        and inputs[0].dim(2) == 96
        and inputs[0].dim(3) == 96
        and len(outputs) == 1
        and outputs[0].dim(-1) == 3
    )


class GenderAge:
    """insightface's attribute model (swapRB to RGB as insightface does)."""

    def __init__(self, session: ort.InferenceSession, path: Path) -> None:
        self.session = session
        self.path = path
        self.input_name = inputs_of(session)[0].name
        self.output_name = outputs_of(session)[0].name
        self.size = 96

    def crop(self, frame_bgr: np.ndarray, bbox: np.ndarray) -> np.ndarray:
        x1, y1, x2, y2 = (float(v) for v in bbox[:4])
        scale = self.size / (max(x2 - x1, y2 - y1) * 1.5)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        matrix = np.array([[scale, 0, self.size / 2 - cx * scale], [0, scale, self.size / 2 - cy * scale]])
        return cv2.warpAffine(frame_bgr, matrix, (self.size, self.size), borderValue=0.0)

    def predict(self, frame_bgr: np.ndarray, bbox: np.ndarray) -> tuple[Gender, float, float]:
        """(gender, probability of that gender, age in years)."""
        crop = self.crop(frame_bgr, bbox)[:, :, ::-1].astype(np.float32)
        blob = crop.transpose(2, 0, 1)[None].copy()
        out = np.asarray(self.session.run([self.output_name], {self.input_name: blob})[0]).reshape(-1)
        logits = out[:2] - out[:2].max()
        probs = np.exp(logits) / np.exp(logits).sum()
        index = int(np.argmax(probs))
        return ("female", "male")[index], float(probs[index]), float(out[2] * 100.0)
