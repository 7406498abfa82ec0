"""Face Mesh index groups (topology data) and the 5-point subset used for alignment."""

from __future__ import annotations

import numpy as np

FACE_OVAL = np.array([10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
                      148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109])
BROWS = np.array([70, 63, 105, 66, 107, 336, 296, 334, 293, 300, 46, 53, 52, 65, 55, 285, 295, 282, 283, 276])
INNER_LIPS = np.array([78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95])
CHIN = 152
RIGHT_EYE_OUTER, LEFT_EYE_OUTER = 33, 263  # subject's right eye is on the image's left
RIGHT_EYE_INNER, LEFT_EYE_INNER = 133, 362
NOSE_TIP, NOSE_BOTTOM = 1, 2
MOUTH_RIGHT, MOUTH_LEFT = 61, 291
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14
RIGHT_CHEEK, LEFT_CHEEK = 234, 454
RIGHT_EYE_CENTRE = np.array([33, 133, 159, 145])
LEFT_EYE_CENTRE = np.array([263, 362, 386, 374])


def eye_angle(points: np.ndarray) -> float:
    """Roll of the face: angle of the line from the image-left eye corner to the image-right one."""
    d = points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]
    return float(np.arctan2(d[1], d[0]))


def five_points(points: np.ndarray) -> np.ndarray:
    """(5, 2) in insightface order: image-left eye, image-right eye, nose tip, image-left and image-right mouth corner."""
    return np.stack([
        points[RIGHT_EYE_CENTRE].mean(0), points[LEFT_EYE_CENTRE].mean(0), points[NOSE_TIP],
        points[MOUTH_RIGHT], points[MOUTH_LEFT],
    ]).astype(np.float32)


def face_size(points: np.ndarray) -> float:
    lo, hi = points.min(0), points.max(0)
    return float(max(hi - lo))
