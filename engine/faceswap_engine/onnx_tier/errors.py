"""Errors for a user-supplied weights folder: each says which file is at fault and what shape was expected."""

from __future__ import annotations

from faceswap_engine.errors import EngineError


class WeightsError(EngineError):
    """The configured weights folder cannot be used (missing folder, missing model, model of the wrong shape)."""

    code = "invalid_weights"


class MissingModel(WeightsError):
    """A required model (detector, recognizer or swapper) is not in the folder."""

    code = "missing_model"


class WrongModelShape(WeightsError):
    """A file named like a known model does not have that model's inputs/outputs."""

    code = "wrong_model_shape"
