"""Low-frequency relighting: match the swapped face's shading to the target's, side to side and top to bottom.

The global Lab transfer fixes overall colour; a source lit from the left pasted on a target lit from the right
still looks wrong and shows seams. Here the ratio of the target's and the rendered face's heavily blurred
luminance (normalised convolution over the inner face, on the coarse grid) becomes a smooth gain map, clamped
so that beards, glasses or eyes cannot cause dark or bright halos. Cost: a few thousand coarse samples, one
resize and one saturating uint8 multiply over the face box.
"""

from __future__ import annotations

import cv2
import numpy as np

GAIN_MIN, GAIN_MAX = 0.75, 1.33


def _coarse_luma(image: np.ndarray, step: int, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Luma of the pixels at the coarse samples (image is region-sized) and which samples exist."""
    sample = image[step // 2 :: step, step // 2 :: step]
    luma = np.zeros(shape, np.float32)
    valid = np.zeros(shape, np.float32)
    h, w = min(shape[0], sample.shape[0]), min(shape[1], sample.shape[1])
    gray = cv2.cvtColor(np.ascontiguousarray(sample[:h, :w, :3]), cv2.COLOR_BGR2GRAY)
    luma[:h, :w] = gray
    valid[:h, :w] = 1.0
    return luma, valid


def _smooth(values: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    k = int(sigma * 3) * 2 + 1
    num = cv2.GaussianBlur(values * weight, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)
    den = cv2.GaussianBlur(weight, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)
    return num / np.maximum(den, 1e-3)


def gain_map(target_region: np.ndarray, face: np.ndarray, inner: np.ndarray, step: int, face_px: float) -> np.ndarray:
    """Coarse-grid gain (float32, ``inner``'s shape) that brings the face's shading to the target's."""
    t, valid_t = _coarse_luma(target_region, step, inner.shape)
    f, valid_f = _coarse_luma(face, step, inner.shape)
    weight = inner * valid_t * valid_f
    if weight.sum() < 16:
        return np.ones(inner.shape, np.float32)
    sigma = max(1.0, 0.12 * face_px / step)
    gain = (_smooth(t, weight, sigma) + 4.0) / (_smooth(f, weight, sigma) + 4.0)
    return np.clip(gain, GAIN_MIN, GAIN_MAX).astype(np.float32)


def apply_gain(face: np.ndarray, gain_full: np.ndarray) -> np.ndarray:
    """face · gain per pixel (BGR uint8; the gain is region-sized float32), saturating, in fixed point."""
    g = np.clip(gain_full * 128.0, 0, 255).astype(np.uint8)
    g3 = cv2.merge([g, g, g])
    return cv2.multiply(face, g3, scale=1.0 / 128.0)
