"""Yaw from the mesh's depth: the angle of the cheek-to-cheek line in the (eye-aligned x, z) plane.

Face Mesh's z is in the same pixel units as x, so this is a direct, smooth estimate (it reads a little low at
large angles). The landmark morph breaks down beyond about 40° of yaw, so such faces are faded out.
"""

from __future__ import annotations

import numpy as np

from .landmarks import LEFT_CHEEK, RIGHT_CHEEK, eye_angle

FULL_UP_TO_DEG = 30.0  # video: full weight up to here, fading to zero at ZERO_FROM_DEG
ZERO_FROM_DEG = 45.0
STILL_MAX_DEG = 50.0  # photos: swapped (at full weight) below this; there is no temporal glitch to avoid


def yaw_degrees(points: np.ndarray, z: np.ndarray) -> float:
    """Signed yaw in degrees; 0 = frontal."""
    a = eye_angle(points)
    across = float((points[LEFT_CHEEK] - points[RIGHT_CHEEK]) @ np.array([np.cos(a), np.sin(a)]))
    depth = float(z[LEFT_CHEEK] - z[RIGHT_CHEEK])
    return float(np.degrees(np.arctan2(depth, across)))


def yaw_weight(points: np.ndarray, z: np.ndarray) -> float:
    """1 for near-frontal faces, falling linearly to 0 as the face turns away."""
    off = abs(yaw_degrees(points, z))
    return float(np.clip((ZERO_FROM_DEG - off) / (ZERO_FROM_DEG - FULL_UP_TO_DEG), 0.0, 1.0))


def still_swappable(points: np.ndarray, z: np.ndarray) -> bool:
    """Whether a face on a photo is frontal enough to swap at all (all or nothing: no ghost blends)."""
    return abs(yaw_degrees(points, z)) < STILL_MAX_DEG
