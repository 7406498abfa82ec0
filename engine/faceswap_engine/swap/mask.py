"""The blend mask: the target's face oval cut a little above the brows, minus the open inner mouth and any
occluder polygons, feathered inwards. Built on the coarse grid the warp uses, then upsampled.
"""

from __future__ import annotations

import cv2
import numpy as np

from .warp import to_coarse
from .landmarks import BROWS, CHIN, FACE_OVAL, INNER_LIPS, LOWER_LIP_INNER, UPPER_LIP_INNER, eye_angle, face_size

Region = tuple[int, int, int, int]


def clipped_oval(points: np.ndarray, brow_margin: float = 0.12) -> np.ndarray:
    """Face-oval polygon with every point above (brow line − margin·face height) pulled down to that line.

    This drops the source's forehead and fringe, the commonest artefact of a landmark morph.
    """
    a = eye_angle(points)
    c, s = np.cos(a), np.sin(a)
    rot = np.array([[c, -s], [s, c]], np.float32)  # local → image
    local = points @ rot  # image → local (eye line horizontal)
    brow_top = local[BROWS, 1].min()
    height = local[CHIN, 1] - brow_top
    limit = brow_top - brow_margin * height
    oval = local[FACE_OVAL].copy()
    oval[:, 1] = np.maximum(oval[:, 1], limit)
    return oval @ rot.T


def mouth_hole(points: np.ndarray, open_ratio: float = 0.03, grow: float = 1.12) -> np.ndarray | None:
    """Inner-lip polygon (slightly grown) when the mouth is open, so the target's teeth and tongue stay."""
    gap = float(np.linalg.norm(points[UPPER_LIP_INNER] - points[LOWER_LIP_INNER]))
    if gap < open_ratio * face_size(points):
        return None
    lips = points[INNER_LIPS]
    centre = lips.mean(0)
    return (lips - centre) * grow + centre


def coarse_mask(
    points: np.ndarray,
    region: Region,
    step: int,
    shape: tuple[int, int],
    holes: list[np.ndarray] = (),
    feather: float = 0.06,
) -> np.ndarray:
    """float32 mask on the coarse grid (see ``warp.coarse_shape``), 0 at the oval edge, 1 inside."""
    shift = 4

    def poly(p: np.ndarray) -> np.ndarray:
        return np.round(to_coarse(p, region, step) * (1 << shift)).astype(np.int32)

    sigma = max(0.8, feather * face_size(points) / step / 2)
    face = np.zeros(shape, np.float32)
    cv2.fillPoly(face, [poly(clipped_oval(points))], 1.0, cv2.LINE_8, shift)
    # Feather inwards: 0.5 at the oval's edge becomes 0, so no target-edge pixels leak through.
    face = np.clip(_blur(face, sigma) * 2.0 - 1.0, 0.0, 1.0)
    cut = [p for p in (mouth_hole(points), *holes) if p is not None]
    if cut:
        keep = np.zeros(shape, np.float32)
        cv2.fillPoly(keep, [poly(p) for p in cut], 1.0, cv2.LINE_8, shift)
        # Feather outwards: the mouth and occluders are fully kept up to their edge, fading beyond it.
        keep = np.clip(_blur(keep, max(0.8, sigma / 2)) * 2.0, 0.0, 1.0)
        face *= 1.0 - keep
    return face


def _blur(m: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with zeros beyond the grid: a reflecting border would mirror the polygon back in and
    leave a non-zero, hard-edged mask along the region's border."""
    k = int(sigma * 3) * 2 + 1
    return cv2.GaussianBlur(m, (k, k), sigma, borderType=cv2.BORDER_CONSTANT)


def mask_region(points: np.ndarray, frame_shape: tuple[int, ...], pad: int = 2) -> Region | None:
    """Box of the clipped oval in the frame, or None if it is empty after clipping to the frame."""
    oval = clipped_oval(points)
    lo = np.floor(oval.min(0)).astype(int) - pad
    hi = np.ceil(oval.max(0)).astype(int) + pad
    h, w = frame_shape[:2]
    x0, y0, x1, y1 = max(0, lo[0]), max(0, lo[1]), min(w, hi[0]), min(h, hi[1])
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    return int(x0), int(y0), int(x1), int(y1)
