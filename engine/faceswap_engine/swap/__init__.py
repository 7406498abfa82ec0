"""Face swap core (CPU tier): BlazeFace → Face Mesh → piecewise-affine warp → Lab colour → mask → blend.

Public API: ``SourceFace``, ``SwapOptions``, ``SwapStats``, ``FaceSwapSession``, ``swap_image`` and the
``Backend`` protocol (``backend.py``) through which a model tier (``faceswap_engine.onnx_tier``) plugs in.
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
