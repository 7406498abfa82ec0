"""Tier 1: user-supplied insightface-compatible ONNX models (SCRFD, ArcFace, inswapper_128, genderage) on CPU.

``load_backend(weights_dir)`` finds the models by their input/output shapes and returns a backend the engine's
``FaceSwapSession(..., backend=...)`` uses in place of the built-in landmark morph; ``backend_from_env()`` does
the same for ``ENGINE_WEIGHTS_DIR`` (None when unset).
"""

from __future__ import annotations

from .backend import OnnxBackend, OnnxIdentity, backend_from_env, load_backend
from .config import WEIGHTS_ENV, LoadedWeights
from .errors import MissingModel, WeightsError, WrongModelShape
from .faces import DetectedFace

__all__ = [
    "WEIGHTS_ENV",
    "DetectedFace",
    "LoadedWeights",
    "MissingModel",
    "OnnxBackend",
    "OnnxIdentity",
    "WeightsError",
    "WrongModelShape",
    "backend_from_env",
    "load_backend",
]
