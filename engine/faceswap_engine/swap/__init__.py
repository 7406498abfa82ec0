"""Face swap core (CPU tier): BlazeFace → Face Mesh → piecewise-affine warp → Lab colour + relight → mask → blend.

Usage::

    session = FaceSwapSession([SourceFace(face_bgr)], SwapOptions(occlusion=False))   # NoFaceInSource if none
    for frame in frames:                        # HxWx3 uint8 BGR; returns a new frame of the same shape
        out = session.process_frame(frame)
    session.stats                               # SwapStats(frames, frames_with_face, faces_swapped, tracks)

    image, warnings = swap_image(sources, target_bgr, options)   # no face / turned face → input + warning

Multi mode (any ``SourceFace.gender`` set): every target face gets the source of its gender, decided once per
face track from its first frames (votes of the CC0 gender model). ``session.faces()`` tells what was decided
per face; ``session.process_still(image)`` is the one-image path (no fading; returns the faces found).

A model tier plugs in through the ``Backend`` protocol (``backend.py``); ``FaceSwapSession(..., backend=b)``.
Modules, one job each: model_files, tflite, anchors, detector, mesh, landmarks, tracker, smoothing, pose,
warp, source_skin, colour, relight, mask, occlusion, gender, blend, backend, session.
"""

from __future__ import annotations

from .backend import Backend, FaceGeometry, LandmarkMorphBackend
from .session import FaceInfo, FaceSwapSession, SourceFace, SwapOptions, SwapStats, swap_image

__all__ = [
    "Backend",
    "FaceGeometry",
    "FaceInfo",
    "FaceSwapSession",
    "LandmarkMorphBackend",
    "SourceFace",
    "SwapOptions",
    "SwapStats",
    "swap_image",
]
