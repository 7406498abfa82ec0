"""Lab colour transfer (mean/std per channel) done as three 256-entry LUTs on 8-bit Lab.

A per-channel affine in Lab is exactly a LUT on OpenCV's 8-bit Lab, so the per-pixel cost is two colour
conversions and one ``cv2.LUT`` over the face box only. Statistics come from a sparse sample and are smoothed
per track (EMA) so the face does not flicker.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class LabStats:
    mean: np.ndarray  # (3,) in OpenCV 8-bit Lab units
    std: np.ndarray  # (3,)


def lab_stats(pixels_bgr: np.ndarray) -> LabStats | None:
    """Stats of an (N, 3) uint8 BGR sample; None when the sample is too small to trust."""
    if len(pixels_bgr) < 16:
        return None
    lab = cv2.cvtColor(pixels_bgr.reshape(-1, 1, 3), cv2.COLOR_BGR2Lab).reshape(-1, 3).astype(np.float32)
    return LabStats(lab.mean(0), np.maximum(lab.std(0), 1.0))


def transfer_lut(source: LabStats, target: LabStats, max_gain: float = 1.6) -> np.ndarray:
    """(1, 256, 3) uint8 LUT mapping source Lab statistics onto the target's."""
    gain = np.clip(target.std / source.std, 1.0 / max_gain, max_gain)
    v = np.arange(256, dtype=np.float32)[:, None]
    lut = (v - source.mean) * gain + target.mean
    return np.clip(np.round(lut), 0, 255).astype(np.uint8)[None]


def apply_lut(face: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Recolour a BGR (or BGRA; alpha passes through) image with a Lab LUT from ``transfer_lut``."""
    lab = cv2.cvtColor(np.ascontiguousarray(face[..., :3]), cv2.COLOR_BGR2Lab)
    bgr = cv2.cvtColor(cv2.LUT(lab, lut), cv2.COLOR_Lab2BGR)
    return np.dstack([bgr, face[..., 3]]) if face.shape[2] == 4 else bgr


class StatsEma:
    """Exponential moving average of Lab statistics (per track)."""

    def __init__(self, rate: float = 0.25) -> None:
        self.rate = rate
        self.value: LabStats | None = None

    def update(self, stats: LabStats | None) -> LabStats | None:
        if stats is None:
            return self.value
        if self.value is None:
            self.value = stats
        else:
            r = self.rate
            self.value = LabStats(self.value.mean * (1 - r) + stats.mean * r, self.value.std * (1 - r) + stats.std * r)
        return self.value
