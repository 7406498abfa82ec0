"""Which source pixels at the face's edge are skin: the source's fringe, hat, sideburns, ear or background
must not be transplanted (turned targets stretch the source's edge and make such pixels very visible).

Computed once per source: a Lab skin model from cheek and nose samples, scored on the forehead band above the
brows and on the outer ring of the face oval above the mouth; elsewhere everything is kept (eyes, brows, lips
and the chin are the identity even where they are not skin-coloured). The result is the alpha channel of the
source crop, warped with it, so the target's own skin shows where the source has none.
"""

from __future__ import annotations

import cv2
import numpy as np

from .landmarks import BROWS, FACE_OVAL, MOUTH_LEFT, MOUTH_RIGHT, eye_angle, face_size

SKIN_SAMPLES = np.array([50, 280, 36, 266, 205, 425, 101, 330, 4, 195, 118, 347])


def forehead_skin_alpha(image_bgr: np.ndarray, points: np.ndarray) -> np.ndarray:
    """uint8 alpha of ``image_bgr``'s size: 255 = keep, 0 = hair/occluder above the brows."""
    h, w = image_bgr.shape[:2]
    lab = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2Lab).astype(np.float32)
    size = face_size(points)
    r = max(1, int(size * 0.015))
    samples = []
    for x, y in points[SKIN_SAMPLES]:
        xi, yi = int(np.clip(x, r, w - r - 1)), int(np.clip(y, r, h - r - 1))
        samples.append(lab[yi - r : yi + r + 1, xi - r : xi + r + 1].reshape(-1, 3).mean(0))
    ref = np.median(np.array(samples), axis=0)
    darker = np.minimum(0.0, lab[..., 0] - ref[0] + 30.0) / 28.0  # shading is fine; much darker is hair
    brighter = np.maximum(0.0, lab[..., 0] - ref[0] - 45.0) / 28.0
    chroma = np.hypot((lab[..., 1] - ref[1]) / 9.0, (lab[..., 2] - ref[2]) / 11.0)
    distance = np.sqrt(darker**2 + brighter**2 + chroma**2)
    skin = np.clip(1.8 - distance, 0.0, 1.0)
    # only the band above the brows is judged
    a = eye_angle(points)
    c, s = np.cos(a), np.sin(a)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    local_y = -s * xs + c * ys
    brow_y = float((points[BROWS] @ np.array([-s, c])).min())
    band = np.clip((brow_y + 0.02 * size - local_y) / (0.03 * size), 0.0, 1.0)  # 0 below the brows, 1 above
    # the outer ring of the oval (within ~10% of the face size of its edge), down to the mouth corners
    oval = np.zeros((h, w), np.uint8)
    cv2.fillPoly(oval, [np.round(points[FACE_OVAL]).astype(np.int32)], 255)
    depth = cv2.distanceTransform(oval, cv2.DIST_L2, 3)
    mouth_y = float((points[[MOUTH_LEFT, MOUTH_RIGHT]] @ np.array([-s, c])).mean())
    ring = np.clip((0.1 * size - depth) / (0.03 * size), 0.0, 1.0)
    ring *= np.clip((mouth_y - local_y) / (0.05 * size), 0.0, 1.0)
    judged = np.maximum(band, ring)
    alpha = 1.0 - judged * (1.0 - skin)
    k = max(3, int(size * 0.02) | 1)
    alpha = cv2.morphologyEx(alpha, cv2.MORPH_OPEN, np.ones((k, k), np.uint8))
    alpha = cv2.GaussianBlur(alpha, (0, 0), max(1.0, size * 0.01))
    return np.clip(alpha * 255.0, 0, 255).astype(np.uint8)
