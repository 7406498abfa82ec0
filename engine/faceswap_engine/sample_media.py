"""Real photos and a real video with a face that installed packages ship.

The project never commits media: its install step (``scripts/setup.sh``) installs the packages below, and tests,
benchmarks and the demo find the files here. A missing file raises ``MissingSampleMedia`` (tests fail, not skip).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

OPENCV_DOC = Path("/usr/share/doc/opencv-doc")


class MissingSampleMedia(FileNotFoundError):
    """A sample file is not installed; the message says which package provides it."""


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (importing may pull heavy dependencies)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _in_package(package: str, relative: str, hint: str) -> Path:
    root = _package_dir(package)
    path = root / relative if root else None
    if path is None or not path.is_file():
        raise MissingSampleMedia(f"{package}/{relative} is not installed; {hint}")
    return path


def _on_disk(path: Path, hint: str) -> Path:
    if not path.is_file():
        raise MissingSampleMedia(f"{path} is not installed; {hint}")
    return path


_APT_HINT = "run `make setup` (apt-get install opencv-doc)"
_PIP_HINT = "run `make setup` (pip install -r requirements-dev.txt)"


def astronaut() -> Path:
    """Eileen Collins, 512x512 portrait, female (scikit-image)."""
    return _in_package("skimage", "data/astronaut.png", _PIP_HINT)


def grace_hopper() -> Path:
    """Grace Hopper, 512x600 portrait, female (matplotlib sample data)."""
    return _in_package("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", _PIP_HINT)


def group_photo() -> Path:
    """Three women and three men, 1280x886 (insightface wheel, installed with --no-deps)."""
    return _in_package("insightface", "data/images/t1.jpg", _PIP_HINT)


def tom_hanks() -> Path:
    """A male face pre-aligned to 112x112 (insightface wheel); pad it before detection."""
    return _in_package("insightface", "data/images/Tom_Hanks_54745.png", _PIP_HINT)


def male_portrait() -> Path:
    """A clean frontal male face, 320x320 (Debian opencv-doc)."""
    return _on_disk(OPENCV_DOC / "opencv4/html/face_swapped.jpg", _APT_HINT)


def messi() -> Path:
    """A small face in a 548x342 photo (Debian opencv-doc)."""
    return _on_disk(OPENCV_DOC / "examples/data/messi5.jpg", _APT_HINT)


def megamind_video() -> Path:
    """720x528, 23.976 fps, 270 frames, Xvid with AC3 stereo audio; one face (Debian opencv-doc)."""
    return _on_disk(OPENCV_DOC / "examples/data/Megamind.avi", _APT_HINT)


def megamind_damaged_video() -> Path:
    """A damaged variant of the same clip, for corrupt-input tests (Debian opencv-doc)."""
    return _on_disk(OPENCV_DOC / "examples/data/Megamind_bugy.avi", _APT_HINT)
