"""Find the models in a weights folder by what their sessions take and return, not by their names.

A file whose name says what it is (``inswapper_128*.onnx``, ``w600k_r50*.onnx``, ``det_*``/``scrfd_*``,
``retinaface*``, ``yoloface*``, ``genderage*``) must have that model's shapes, else it is an error: a user who
dropped ``inswapper_128.onnx`` in the folder wants to hear that it is the wrong file, not have it ignored.
Other ``.onnx`` files are classified by shape, and ignored when they fit no role.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from .attributes import looks_like_genderage
from .detector import looks_like_scrfd, looks_like_yoloface
from .errors import MissingModel, WeightsError, WrongModelShape
from .recognizer import looks_like_recognizer
from .sessions import TensorSpec, describe, inputs_of, open_session, outputs_of
from .swapper import looks_like_inswapper

Role = Literal["scrfd", "yoloface", "recognizer", "swapper", "genderage"]

EXPECTED: dict[Role, str] = {
    "scrfd": "1 input 1x3xHxW, 6/9/10/15 outputs of [N,1]/[N,4]/[N,10] (SCRFD/RetinaFace layout)",
    "yoloface": "1 input 1x3xHxW, 1 output 1x20xN",
    "recognizer": "1 input Nx3x112x112, 1 output Nx512",
    "swapper": "inputs 1x3x128x128 and 1x512, 1 output 1x3x128x128",
    "genderage": "1 input Nx3x96x96, 1 output Nx3",
}

_NAME_HINTS: tuple[tuple[tuple[str, ...], Role], ...] = (
    (("inswapper",), "swapper"),
    (("w600k", "arcface", "glintr100", "webface"), "recognizer"),
    (("det_", "scrfd", "retinaface"), "scrfd"),
    (("yoloface", "yolo_face"), "yoloface"),
    (("genderage",), "genderage"),
)

_CHECKS = {
    "scrfd": looks_like_scrfd,
    "yoloface": looks_like_yoloface,
    "recognizer": looks_like_recognizer,
    "swapper": looks_like_inswapper,
    "genderage": looks_like_genderage,
}


def role_from_name(path: Path) -> Role | None:
    name = path.name.lower()
    for prefixes, role in _NAME_HINTS:
        if any(name.startswith(p) for p in prefixes):
            return role
    return None


def role_from_shapes(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> Role | None:
    for role, check in _CHECKS.items():
        if check(inputs, outputs):
            return role  # type: ignore[return-value]
    return None


@dataclass
class FoundModel:
    role: Role
    path: Path
    session: ort.InferenceSession


@dataclass
class Discovery:
    models: dict[Role, FoundModel] = field(default_factory=dict)
    ignored: list[Path] = field(default_factory=list)

    @property
    def detector(self) -> FoundModel | None:
        return self.models.get("scrfd") or self.models.get("yoloface")


def discover(weights_dir: Path, threads: int | None = None) -> Discovery:
    """Open every ``.onnx`` in the folder and pick one model per role; raise if a required one is missing."""
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        raise WeightsError(f"weights folder {weights_dir} does not exist or is not a folder", loc=["weights"])
    found = Discovery()
    named: set[Role] = set()
    for path in sorted(weights_dir.glob("*.onnx")):
        hinted = role_from_name(path)
        try:
            session = open_session(path, threads)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise WeightsError(f"{path.name}: onnxruntime cannot load it: {exc}".strip(), loc=[path.name]) from exc
        inputs, outputs = inputs_of(session), outputs_of(session)
        role = role_from_shapes(inputs, outputs)
        if hinted is not None and role != hinted:
            raise WrongModelShape(
                f"{path.name} is named like a {hinted} model but has inputs {describe(inputs)} and outputs "
                f"{describe(outputs)}; expected {EXPECTED[hinted]}",
                loc=[path.name],
            )
        if role is None:
            found.ignored.append(path)
            continue
        # A file named for its role wins over one recognised by shape only; otherwise the first (sorted) wins.
        if role in found.models and (role in named or hinted is None):
            found.ignored.append(path)
            continue
        if role in found.models:
            found.ignored.append(found.models[role].path)
        found.models[role] = FoundModel(role, path, session)
        if hinted is not None:
            named.add(role)
    missing = []
    if found.detector is None:
        missing.append(f"a face detector (det_10g.onnx / scrfd_*.onnx / yoloface_8n.onnx: {EXPECTED['scrfd']})")
    if "recognizer" not in found.models:
        missing.append(f"a face recognizer (w600k_r50.onnx: {EXPECTED['recognizer']})")
    if "swapper" not in found.models:
        missing.append(f"a face swapper (inswapper_128.onnx: {EXPECTED['swapper']})")
    if missing:
        present = ", ".join(p.name for p in sorted(weights_dir.glob("*.onnx"))) or "no .onnx files"
        raise MissingModel(
            f"weights folder {weights_dir} lacks " + "; ".join(missing) + f" (found: {present})", loc=["weights"]
        )
    return found
