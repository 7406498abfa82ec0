"""One-Euro filter on landmark sets: steady when the face is still, responsive when it moves.

Positions are normalised by the face size so one setting fits faces of any size.
"""

from __future__ import annotations

import math

import numpy as np


def _alpha(cutoff: float, rate: float) -> float:
    tau = 1.0 / (2 * math.pi * cutoff)
    return 1.0 / (1.0 + tau * rate)


class OneEuro:
    def __init__(self, rate: float = 25.0, min_cutoff: float = 1.5, beta: float = 15.0, d_cutoff: float = 1.0) -> None:
        self.rate, self.min_cutoff, self.beta, self.d_cutoff = rate, min_cutoff, beta, d_cutoff
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._scale = 1.0

    def reset(self) -> None:
        self._x = self._dx = None

    def __call__(self, points: np.ndarray, scale: float) -> np.ndarray:
        scale = max(scale, 1.0)
        if self._x is not None and not (0.7 < scale / self._scale < 1.4):
            self.reset()  # a jump in size means a different face or a cut: start afresh
        if self._x is None:
            self._scale = scale
            self._x, self._dx = points.astype(np.float32) / scale, np.zeros(points.shape, np.float32)
            return points.astype(np.float32)
        x = points.astype(np.float32) / self._scale
        dx = (x - self._x) * self.rate
        a_d = _alpha(self.d_cutoff, self.rate)
        self._dx = a_d * dx + (1 - a_d) * self._dx
        speed = float(np.abs(self._dx).mean())
        a = _alpha(self.min_cutoff + self.beta * speed, self.rate)
        self._x = a * x + (1 - a) * self._x
        return self._x * self._scale
