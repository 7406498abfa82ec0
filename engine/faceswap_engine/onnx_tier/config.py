"""Where the user's weights folder comes from, and what was loaded from it (a pydantic summary for logs/CLI/API)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

WEIGHTS_ENV = "ENGINE_WEIGHTS_DIR"


class LoadedWeights(BaseModel):
    """Which file plays which role, and which .onnx files were ignored (they fit no role)."""

    folder: str
    models: dict[str, str] = Field(description="role (scrfd|yoloface|recognizer|swapper|genderage) -> file name")
    ignored: list[str] = Field(default_factory=list)


def weights_dir_from_env(environ: dict[str, str] | None = None) -> Path | None:
    """``ENGINE_WEIGHTS_DIR`` if set and non-empty (the folder is checked by ``load_backend``), else None."""
    value = (environ if environ is not None else os.environ).get(WEIGHTS_ENV, "").strip()
    return Path(value).expanduser() if value else None
