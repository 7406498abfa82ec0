"""The ``Backend`` protocol: the part of the swap that a model tier may replace.

The session always owns tracking (BlazeFace + Face Mesh), smoothing, gender, mask, occlusion, fading and
blending. A backend only turns "this target face, this source identity" into pixels:

1. ``detect(image)``: optional better detector. Return ``None`` to use the built-in BlazeFace. Returned
   detections seed the Face Mesh, which then tracks the face.
2. ``embed(image, face)``: called ONCE per source image with its ``FaceGeometry``; returns an opaque identity
   object (the CPU tier: the source mesh and its triangulation; an ONNX tier: e.g. the ArcFace latent).
3. ``swap(frame, face, identity, region)``: the swapped face as a BGR uint8 image of ``region``'s size
   (``region`` = x0, y0, x1, y1 in frame pixels, already clipped to the frame). Only the pixels under the
   session's mask are used, so the backend need not mask or blend; pixels outside the face may be anything.
   It may return BGRA instead: the alpha (0-255) further restricts the session's mask (the CPU tier uses it to
   leave out the source's hair on the forehead; an ONNX tier could put an occlusion/XSeg mask there).
   Alignment: ``face.kps5`` are the 5 insightface points (image-left eye, image-right eye, nose, mouth corners)
   derived from the smoothed mesh, ready for ``estimateAffinePartial2D`` against an ArcFace template.
4. ``colour_match``: whether the session should Lab-match the rendered face to the target (True for texture
   transplants; a learned swapper already matches lighting).

A backend instance is used by one session at a time (the session holds a lock); keep per-source state in the
identity object, not in the backend, so one backend may serve sessions one after another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from .detector import Detection
from .landmarks import five_points
from .warp import PiecewiseWarp, SourceMesh

Region = tuple[int, int, int, int]


@dataclass(frozen=True)
class FaceGeometry:
    """One face in one image, as the session knows it."""

    points: np.ndarray  # (468, 2) float32 Face Mesh landmarks, image pixels
    kps5: np.ndarray  # (5, 2) float32 insightface-order points (see module doc)
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 of the landmarks

    @classmethod
    def from_points(cls, points: np.ndarray) -> "FaceGeometry":
        lo, hi = points.min(0), points.max(0)
        return cls(points, five_points(points), (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])))


@runtime_checkable
class Backend(Protocol):
    name: str
    colour_match: bool

    def detect(self, image_bgr: np.ndarray) -> list[Detection] | None: ...

    def embed(self, image_bgr: np.ndarray, face: FaceGeometry) -> object: ...

    def swap(self, frame_bgr: np.ndarray, face: FaceGeometry, identity: object, region: Region) -> np.ndarray: ...


class LandmarkMorphBackend:
    """The built-in CPU tier: transplant the source's own pixels onto the target's mesh (piecewise affine)."""

    name = "landmark-morph"
    colour_match = True

    def detect(self, image_bgr: np.ndarray) -> list[Detection] | None:
        return None

    def embed(self, image_bgr: np.ndarray, face: FaceGeometry) -> PiecewiseWarp:
        return PiecewiseWarp(SourceMesh.from_image(image_bgr, face.points))

    def swap(self, frame_bgr: np.ndarray, face: FaceGeometry, identity: object, region: Region) -> np.ndarray:
        assert isinstance(identity, PiecewiseWarp)
        return identity.render(face.points, region, step=grid_step(face.points))


def grid_step(points: np.ndarray) -> int:
    """Coarse-grid spacing for warp and mask: ~100 samples across the face, 2..16 px (bilinear between)."""
    lo, hi = points.min(0), points.max(0)
    return int(np.clip(round(float(max(hi - lo)) / 100.0), 2, 16))
