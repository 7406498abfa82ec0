"""Alpha blend of the rendered face into the output frame, touching only the face box."""

from __future__ import annotations

import cv2
import numpy as np

Region = tuple[int, int, int, int]


def blend_into(frame: np.ndarray, region: Region, face_bgr: np.ndarray, alpha: np.ndarray) -> None:
    """frame[region] = face·alpha + frame[region]·(1−alpha), in place; ``alpha`` is float32 in [0, 1]."""
    x0, y0, x1, y1 = region
    roi = frame[y0:y1, x0:x1]
    roi[...] = cv2.blendLinear(face_bgr, roi, alpha, 1.0 - alpha)
