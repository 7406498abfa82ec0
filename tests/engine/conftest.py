"""Fixtures shared by the engine tests: the real sample photos (BGR), loaded once per test session.

A missing sample raises ``MissingSampleMedia`` (the test fails; it does not skip).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from faceswap_engine import sample_media


def _read(path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, f"could not decode {path}"
    return image


@pytest.fixture(scope="session")
def astronaut_bgr() -> np.ndarray:
    return _read(sample_media.astronaut())


@pytest.fixture(scope="session")
def grace_hopper_bgr() -> np.ndarray:
    return _read(sample_media.grace_hopper())


@pytest.fixture(scope="session")
def male_portrait_bgr() -> np.ndarray:
    return _read(sample_media.male_portrait())


@pytest.fixture(scope="session")
def group_photo_bgr() -> np.ndarray:
    return _read(sample_media.group_photo())


@pytest.fixture(scope="session")
def messi_bgr() -> np.ndarray:
    return _read(sample_media.messi())
