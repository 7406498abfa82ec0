"""Paste an aligned crop back into the frame through the inverse warp, under a feathered box mask.

Only the bounding rectangle of the warped crop is touched, so cost scales with the face, not the frame.
"""

from __future__ import annotations

import cv2
import numpy as np


def feathered_box_mask(size: int, padding: float = 0.05, blur: float = 0.3) -> np.ndarray:
    """facefusion-style box mask: ones inset by ``padding``, edges blurred over ``blur`` x half the crop."""
    mask = np.zeros((size, size), dtype=np.float32)
    inset = max(1, int(round(size * padding)))
    mask[inset : size - inset, inset : size - inset] = 1.0
    sigma = max(0.5, blur * size / 2 / 3)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    mask[mask < 0.01] = 0.0
    return mask


def paste_back(
    frame_bgr: np.ndarray, crop_bgr: np.ndarray, matrix: np.ndarray, mask: np.ndarray | None = None
) -> np.ndarray:
    """A new frame with ``crop`` (taken with frame->crop ``matrix``) blended back under ``mask``."""
    size_h, size_w = crop_bgr.shape[:2]
    if mask is None:
        mask = feathered_box_mask(size_w)
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array([[0, 0], [size_w, 0], [0, size_h], [size_w, size_h]], dtype=np.float64)
    mapped = corners @ inverse[:, :2].T + inverse[:, 2]
    height, width = frame_bgr.shape[:2]
    x0 = int(np.clip(np.floor(mapped[:, 0].min()), 0, width))
    y0 = int(np.clip(np.floor(mapped[:, 1].min()), 0, height))
    x1 = int(np.clip(np.ceil(mapped[:, 0].max()) + 1, 0, width))
    y1 = int(np.clip(np.ceil(mapped[:, 1].max()) + 1, 0, height))
    out = frame_bgr.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    local = inverse.copy()
    local[:, 2] -= (x0, y0)
    roi_size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(crop_bgr, local, roi_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(mask.astype(np.float32), local, roi_size, flags=cv2.INTER_LINEAR, borderValue=0.0)
    alpha = alpha[:, :, None]
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = np.clip(alpha * warped.astype(np.float32) + (1.0 - alpha) * roi, 0, 255).round().astype(
        np.uint8
    )
    return out
