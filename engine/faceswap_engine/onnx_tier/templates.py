"""Five-point alignment templates (normalised to [0, 1]) and the similarity fit that maps a face onto them.

Points are ordered left eye, right eye, nose tip, left mouth corner, right mouth corner (image left/right).
"""

from __future__ import annotations

import numpy as np

# insightface's arcface_dst (pixels in a 112 crop) divided by 112.
ARCFACE_112_V2 = np.array(
    [
        [0.34191607, 0.46157411],
        [0.65653393, 0.45983393],
        [0.50022500, 0.64050536],
        [0.37097589, 0.82469196],
        [0.63151696, 0.82325089],
    ],
    dtype=np.float64,
)

# (arcface_dst + (8, 0)) / 128: the template inswapper_128 was trained on.
ARCFACE_128 = np.array(
    [
        [0.36167656, 0.40387734],
        [0.63696719, 0.40235469],
        [0.50019687, 0.56044219],
        [0.38710391, 0.72160547],
        [0.61507734, 0.72034453],
    ],
    dtype=np.float64,
)


def similarity_matrix(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` points to ``dst``.

    Umeyama's closed form: deterministic (no RANSAC), exact for 5 points, same result as a scikit-image
    SimilarityTransform estimate. Returns the 2x3 matrix for ``cv2.warpAffine``.
    """
    src = np.asarray(src, dtype=np.float64).reshape(-1, 2)
    dst = np.asarray(dst, dtype=np.float64).reshape(-1, 2)
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    cov = dst_c.T @ src_c / len(src)
    u, s, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(cov) < 0:
        d[1] = -1.0
    rot = u @ np.diag(d) @ vt
    var_src = (src_c**2).sum() / len(src)
    scale = float((s * d).sum() / var_src) if var_src > 0 else 1.0
    matrix = np.zeros((2, 3), dtype=np.float64)
    matrix[:, :2] = scale * rot
    matrix[:, 2] = dst_mean - scale * rot @ src_mean
    return matrix


def align_matrix(kps: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """Affine matrix that maps the 5 keypoints of a face onto ``template * size``."""
    return similarity_matrix(kps, template * size)
