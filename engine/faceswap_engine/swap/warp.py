"""Source→target piecewise-affine warp over a fixed triangulation of the source mesh.

Per frame the 896 triangle affines are solved in one batched call, the triangle ids are rasterised on a coarse
grid (every ``step`` pixels) and the coarse map is upsampled: a piecewise-affine map is continuous, so bilinear
upsampling is almost exact and the per-pixel cost is one ``warpAffine`` of the map plus one ``cv2.remap``,
restricted to the face box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Region = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), image pixels


def delaunay(points: np.ndarray) -> np.ndarray:
    """(T, 3) vertex indices of the Delaunay triangulation of ``points`` (computed once per source)."""
    lo = points.min(0) - 10
    hi = points.max(0) + 10
    subdiv = cv2.Subdiv2D((int(lo[0]), int(lo[1]), int(hi[0] - lo[0]) + 1, int(hi[1] - lo[1]) + 1))
    index: dict[tuple[float, float], int] = {}
    for i, (x, y) in enumerate(points.astype(np.float32)):
        key = (float(x), float(y))
        if key in index:
            continue
        index[key] = i
        subdiv.insert(key)
    tris = []
    for x0, y0, x1, y1, x2, y2 in subdiv.getTriangleList():
        ids = [index.get((float(np.float32(x)), float(np.float32(y)))) for x, y in ((x0, y0), (x1, y1), (x2, y2))]
        if None not in ids:
            tris.append(ids)
    return np.asarray(tris, np.int32)


def _affines(dst: np.ndarray, src: np.ndarray, tris: np.ndarray) -> np.ndarray:
    """(T+1, 6) maps (a, b, c, d, e, f): source = (a·x + b·y + c, d·x + e·y + f); the last row is a global fit.

    Closed form per triangle (2×2 inverse of the edge vectors), vectorised; degenerate triangles get the
    global affine.
    """
    d0, d1, d2 = dst[tris[:, 0]], dst[tris[:, 1]], dst[tris[:, 2]]
    s0, s1, s2 = src[tris[:, 0]], src[tris[:, 1]], src[tris[:, 2]]
    e1, e2 = d1 - d0, d2 - d0
    f1, f2 = s1 - s0, s2 - s0
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-6
    inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
    # inverse of [[e1x, e2x], [e1y, e2y]]
    i00, i01 = e2[:, 1] * inv_det, -e2[:, 0] * inv_det
    i10, i11 = -e1[:, 1] * inv_det, e1[:, 0] * inv_det
    a = f1[:, 0] * i00 + f2[:, 0] * i10
    b = f1[:, 0] * i01 + f2[:, 0] * i11
    d = f1[:, 1] * i00 + f2[:, 1] * i10
    e = f1[:, 1] * i01 + f2[:, 1] * i11
    c = s0[:, 0] - a * d0[:, 0] - b * d0[:, 1]
    f = s0[:, 1] - d * d0[:, 0] - e * d0[:, 1]
    out = np.empty((len(tris) + 1, 6), np.float64)
    out[:-1] = np.stack([a, b, c, d, e, f], axis=1)
    ones = np.ones((len(dst), 1))
    g, *_ = np.linalg.lstsq(np.hstack([dst, ones]), src, rcond=None)  # (3, 2)
    global_row = np.array([g[0, 0], g[1, 0], g[2, 0], g[0, 1], g[1, 1], g[2, 1]])
    out[:-1][~ok] = global_row
    out[-1] = global_row
    return out


def coarse_shape(region: Region, step: int) -> tuple[int, int]:
    """(rows, cols) of the coarse grid covering ``region``.

    Coarse sample k sits at region pixel (k + 0.5)·step − 0.5: the convention of ``cv2.resize``, so the
    upsampling is one fast, exactly aligned resize.
    """
    x0, y0, x1, y1 = region
    return -(-(y1 - y0) // step), -(-(x1 - x0) // step)


def to_coarse(points: np.ndarray, region: Region, step: int) -> np.ndarray:
    """Region-relative image points → coarse-grid coordinates (float)."""
    return (points - (region[0], region[1]) + 0.5) / step - 0.5


def coarse_pixels(shape: tuple[int, int], step: int) -> tuple[np.ndarray, np.ndarray]:
    """Region-relative pixel coordinates (x, y) of the coarse samples."""
    gy, gx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    return (gx + 0.5) * step - 0.5, (gy + 0.5) * step - 0.5


def upsample(coarse: np.ndarray, region: Region, step: int, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """Coarse grid → full region size (bilinear, aligned with ``coarse_shape``'s convention)."""
    x0, y0, x1, y1 = region
    if step == 1:
        return coarse[: y1 - y0, : x1 - x0]
    gh, gw = coarse.shape[:2]
    full = cv2.resize(coarse, (gw * step, gh * step), interpolation=interpolation)
    return full[: y1 - y0, : x1 - x0]


@dataclass
class SourceMesh:
    """The source face prepared once: a tight crop, its landmarks in crop pixels and the triangulation."""

    image: np.ndarray  # BGR or BGRA crop around the source face (alpha: which pixels may be transplanted)
    points: np.ndarray  # (468, 2) float32, crop pixels
    triangles: np.ndarray  # (T, 3)

    @classmethod
    def from_image(cls, image_bgr: np.ndarray, points: np.ndarray, margin: float = 0.15) -> "SourceMesh":
        """Crop around the face; the crop is BGRA, alpha = which forehead pixels are skin (``source_skin``)."""
        from .source_skin import forehead_skin_alpha

        lo, hi = points.min(0), points.max(0)
        pad = (hi - lo).max() * margin
        h, w = image_bgr.shape[:2]
        x0, y0 = int(max(0, lo[0] - pad)), int(max(0, lo[1] - pad))
        x1, y1 = int(min(w, hi[0] + pad + 1)), int(min(h, hi[1] + pad + 1))
        local = (points - [x0, y0]).astype(np.float32)
        crop = np.ascontiguousarray(image_bgr[y0:y1, x0:x1])
        bgra = np.dstack([crop, forehead_skin_alpha(crop, local)])
        return cls(bgra, local, delaunay(local))


class PiecewiseWarp:
    """Renders the source face onto target landmarks inside a region of the target frame."""

    def __init__(self, source: SourceMesh) -> None:
        self.source = source
        self.base: PiecewiseWarp | None = None  # the uncoloured warp this one was recoloured from

    def render(self, target_points: np.ndarray, region: Region, step: int = 4) -> np.ndarray:
        """uint8 image of ``region``'s size (BGR, or BGRA if the source has alpha): the source warped onto the target."""
        x0, y0, _, _ = region
        gh, gw = coarse_shape(region, step)
        tris = self.source.triangles
        local = (target_points - [x0, y0]).astype(np.float64)
        affines = _affines(local, self.source.points.astype(np.float64), tris)
        ids = np.full((gh, gw), len(tris), np.int32)
        shift = 4
        poly = np.round(to_coarse(target_points.astype(np.float64), region, step)[tris] * (1 << shift)).astype(np.int32)
        fill = cv2.fillConvexPoly
        for i in range(len(tris)):
            fill(ids, poly[i], i, cv2.LINE_8, shift)
        gx, gy = coarse_pixels((gh, gw), step)
        coef = affines.astype(np.float32)[ids]  # (gh, gw, 6)
        coarse = np.empty((gh, gw, 2), np.float32)
        coarse[..., 0] = coef[..., 0] * gx + coef[..., 1] * gy + coef[..., 2]
        coarse[..., 1] = coef[..., 3] * gx + coef[..., 4] * gy + coef[..., 5]
        full = upsample(coarse, region, step)
        return cv2.remap(self.source.image, full, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
