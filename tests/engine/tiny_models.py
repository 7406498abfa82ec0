"""Tiny ONNX models with the same inputs and outputs as the real insightface files, built at test time.

They let the ONNX tier be tested end to end without any real weights (which are never committed or downloaded):

- ``build_inswapper``: target 1x3x128x128 + source 1x512 -> 1x3x128x128, output = clip(0.5*target + latent @ W);
  the 512x512 emap is the LAST initializer and, as in the real file, no node uses it.
- ``build_recognizer``: Nx3x112x112 -> Nx512, a fixed random projection of the 8x8-average-pooled crop.
- ``build_scrfd``: 1x3x640x640 -> 9 outputs (scores, box distances, keypoint distances for strides 8/16/32, 2
  anchors), constants designed so decoding yields the faces asked for; an all-dark input yields no face.
- ``build_genderage``: Nx3x96x96 -> Nx3 (2 gender logits + age/100), male when the crop is more blue than red.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

IR_VERSION = 9  # onnx 1.23 writes IR 14 by default; onnxruntime 1.30 reads at most 13
OPSET = 17
DETECT_SIZE = 640
STRIDES = (8, 16, 32)
ANCHORS = 2


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tiny-models")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


# ---------------------------------------------------------------- swapper


@dataclass(frozen=True)
class TinySwapper:
    path: Path
    emap: np.ndarray  # 512x512
    source_weights: np.ndarray  # 512x3: latent -> per-channel (RGB) offset

    def expected_latent(self, embedding: np.ndarray) -> np.ndarray:
        e = np.asarray(embedding, dtype=np.float64).reshape(-1)
        latent = (e / np.linalg.norm(e)) @ self.emap
        return latent / np.linalg.norm(latent)

    def expected_offset_rgb(self, embedding: np.ndarray) -> np.ndarray:
        """The per-channel offset (RGB, in [0,1] units) the model adds for this source embedding."""
        return self.expected_latent(embedding) @ self.source_weights


def build_inswapper(
    path: Path, *, seed: int = 1, size: int = 128, latent_dim: int = 512, emap: np.ndarray | None = None
) -> TinySwapper:
    rng = np.random.default_rng(seed)
    emap = (rng.standard_normal((512, 512)) / np.sqrt(512)).astype(np.float32) if emap is None else emap
    # Each colour channel reads a different third of the latent, scaled so offsets are about +-0.3.
    weights = np.zeros((latent_dim, 3), dtype=np.float32)
    for channel in range(3):
        weights[channel::3, channel] = rng.choice([-1.0, 1.0], size=len(weights[channel::3])) * 0.5
    nodes = [
        helper.make_node("Mul", ["target", "half"], ["scaled"]),
        helper.make_node("MatMul", ["source", "source_weights"], ["offset_flat"]),
        helper.make_node("Reshape", ["offset_flat", "offset_shape"], ["offset"]),
        helper.make_node("Add", ["scaled", "offset"], ["raw"]),
        helper.make_node("Clip", ["raw", "zero", "one"], ["output"]),
    ]
    inits = [
        _init("half", np.array(0.5, dtype=np.float32)),
        _init("source_weights", weights),
        _init("offset_shape", np.array([1, 3, 1, 1], dtype=np.int64)),
        _init("zero", np.array(0.0, dtype=np.float32)),
        _init("one", np.array(1.0, dtype=np.float32)),
        _init("emap", emap.astype(np.float32)),  # last, unused by any node: the real file's layout
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_inswapper",
        [
            helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, size, size]),
            helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, latent_dim]),
        ],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, size, size])],
        initializer=inits,
    )
    _save(graph, path)
    return TinySwapper(path, emap.astype(np.float64), weights.astype(np.float64))


# ---------------------------------------------------------------- recognizer


@dataclass(frozen=True)
class TinyRecognizer:
    path: Path
    projection: np.ndarray  # (3*14*14) x 512

    def expected(self, crop_bgr_112: np.ndarray) -> np.ndarray:
        """What the model returns for an aligned 112x112 BGR crop (independent numpy implementation)."""
        rgb = (crop_bgr_112[:, :, ::-1].astype(np.float64) - 127.5) / 127.5
        pooled = rgb.reshape(14, 8, 14, 8, 3).mean(axis=(1, 3)).transpose(2, 0, 1).reshape(-1)
        return pooled @ self.projection


def build_recognizer(path: Path, *, seed: int = 2, input_size: int = 112, out_dim: int = 512) -> TinyRecognizer:
    rng = np.random.default_rng(seed)
    cells = input_size // 8
    projection = (rng.standard_normal((3 * cells * cells, out_dim)) / np.sqrt(3 * cells * cells)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "projection"], ["683"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_arcface",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["None", 3, input_size, input_size])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["None", out_dim])],
        initializer=[_init("projection", projection)],
    )
    _save(graph, path)
    return TinyRecognizer(path, projection.astype(np.float64))


# ---------------------------------------------------------------- detector


@dataclass(frozen=True)
class PlannedFace:
    """A face the tiny detector reports, in detector-input pixels (the 640x640 letterboxed canvas)."""

    bbox: tuple[float, float, float, float]
    kps: tuple[tuple[float, float], ...]  # 5 points
    score: float = 0.9


def planned_face_from(bbox: Sequence[float], kps: np.ndarray, scale: float, score: float = 0.9) -> PlannedFace:
    """A face given in image pixels, for an image the detector letterboxes with ``scale`` (640 / longest side)."""
    return PlannedFace(
        tuple(float(v) * scale for v in bbox),  # type: ignore[arg-type]
        tuple((float(x) * scale, float(y) * scale) for x, y in np.asarray(kps).reshape(5, 2)),
        score,
    )


def _scrfd_tables(faces: Sequence[PlannedFace]) -> list[np.ndarray]:
    """Score, box and keypoint tables (9 arrays, insightface's output order) that decode to ``faces``."""
    scores, boxes, points = [], [], []
    for stride in STRIDES:
        grid = DETECT_SIZE // stride
        rows = grid * grid * ANCHORS
        scores.append(np.full((rows, 1), 0.01, dtype=np.float32))
        boxes.append(np.ones((rows, 4), dtype=np.float32))
        points.append(np.zeros((rows, 10), dtype=np.float32))
    for face in faces:
        x1, y1, x2, y2 = face.bbox
        size = max(x2 - x1, y2 - y1)
        level = 0 if size < 64 else (1 if size < 160 else 2)  # the stride a real model would fire on
        stride, grid = STRIDES[level], DETECT_SIZE // STRIDES[level]
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = int(np.clip(round(cx / stride), 0, grid - 1)), int(np.clip(round(cy / stride), 0, grid - 1))
        ax, ay = ix * stride, iy * stride
        kps = np.asarray(face.kps, dtype=np.float32).reshape(5, 2)
        for anchor, (score, shrink) in enumerate(((face.score, 0.0), (face.score * 0.8, 0.04 * size))):
            # anchor 1: a weaker, slightly smaller duplicate that NMS must remove
            row = (iy * grid + ix) * ANCHORS + anchor
            scores[level][row, 0] = score
            distances = np.array([ax - x1, ay - y1, x2 - ax, y2 - ay]) - shrink
            boxes[level][row] = distances / stride
            points[level][row] = ((kps - (ax, ay)) / stride).reshape(-1)
    return scores + boxes + points


def build_scrfd(
    path: Path,
    faces: Sequence[PlannedFace],
    *,
    dynamic_input: bool = True,
    batched: bool = False,
    output_order: Sequence[int] | None = None,
) -> Path:
    """SCRFD-shaped detector (det_10g layout: input [1,3,?,?] fed at 640, 9 outputs [N,1]/[N,4]/[N,10]).

    Outputs are constants gated by the input: when no normalised input value exceeds -0.5 (an all-dark frame)
    every score is 0, so "no face in the target" can be tested too. ``output_order`` permutes the 9 outputs
    (and they get neutral names) to check that the backend maps them by shape, not by position or name.
    """
    tables = _scrfd_tables(faces)
    names = [f"score_{s}" for s in STRIDES] + [f"bbox_{s}" for s in STRIDES] + [f"kps_{s}" for s in STRIDES]
    nodes = [
        helper.make_node("ReduceMax", ["input.1"], ["peak"], keepdims=0),
        helper.make_node("Add", ["peak", "half"], ["shifted"]),
        helper.make_node("Mul", ["shifted", "big"], ["steep"]),
        helper.make_node("Clip", ["steep", "zero", "one"], ["gate"]),
        helper.make_node("Mul", ["peak", "zero"], ["nothing"]),
    ]
    inits = [
        _init("half", np.array(0.5, dtype=np.float32)),
        _init("big", np.array(1000.0, dtype=np.float32)),
        _init("zero", np.array(0.0, dtype=np.float32)),
        _init("one", np.array(1.0, dtype=np.float32)),
    ]
    outputs = []
    for index, (name, table) in enumerate(zip(names, tables, strict=True)):
        table = table[None] if batched else table
        inits.append(_init(f"const_{name}", table))
        # scores are gated; boxes and keypoints only depend on the input formally (x*0)
        op, other = ("Mul", "gate") if index < 3 else ("Add", "nothing")
        nodes.append(helper.make_node(op, [f"const_{name}", other], [name]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(table.shape)))
    if output_order is not None:
        outputs = [outputs[i] for i in output_order]
        renames = {o.name: f"out{k}" for k, o in enumerate(outputs)}
        for node in nodes:
            node.output[:] = [renames.get(n, n) for n in node.output]
        for o in outputs:
            o.name = renames[o.name]
    dims: list[int | str] = [1, 3, "?", "?"] if dynamic_input else [1, 3, DETECT_SIZE, DETECT_SIZE]
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, dims)],
        outputs,
        initializer=inits,
    )
    return _save(graph, path)


def build_yoloface(path: Path, faces: Sequence[PlannedFace]) -> Path:
    """yoloface_8n-shaped detector: 1x3x640x640 -> 1x20x8400 (cx, cy, w, h, score, 5 x (x, y, conf)), constants."""
    anchors = sum((DETECT_SIZE // s) ** 2 for s in STRIDES)  # 8400
    table = np.zeros((20, anchors), dtype=np.float32)
    for index, face in enumerate(faces):
        x1, y1, x2, y2 = face.bbox
        row = [(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, face.score]
        for x, y in face.kps:
            row += [x, y, 0.99]
        table[:, 100 + 37 * index] = row
    nodes = [
        helper.make_node("ReduceMax", ["images"], ["peak"], keepdims=0),
        helper.make_node("Mul", ["peak", "zero"], ["nothing"]),
        helper.make_node("Add", ["table", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_yoloface",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, DETECT_SIZE, DETECT_SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 20, anchors])],
        initializer=[_init("table", table[None]), _init("zero", np.array(0.0, dtype=np.float32))],
    )
    return _save(graph, path)


# ---------------------------------------------------------------- attributes and odd files


def build_genderage(path: Path) -> Path:
    """Nx3x96x96 (RGB, raw 0..255) -> Nx3: logits [red - blue, blue - red] (female, male), age 0.3 (30 years)."""
    weights = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [-1.0, 1.0, 0.0]], dtype=np.float32) / 10.0
    nodes = [
        helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        helper.make_node("Add", ["logits", "bias"], ["fc1"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_genderage",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, ["None", 3, 96, 96])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, ["None", 3])],
        initializer=[_init("weights", weights), _init("bias", np.array([0.0, 0.0, 0.3], dtype=np.float32))],
    )
    return _save(graph, path)


def build_unrelated(path: Path, size: int = 192) -> Path:
    """A model that fits no role (like 2d106det.onnx): 1x3x192x192 -> 1x212. Discovery must ignore it."""
    nodes = [
        helper.make_node("GlobalAveragePool", ["data"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "w"], ["fc1"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_other",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 212])],
        initializer=[_init("w", np.ones((3, 212), dtype=np.float32))],
    )
    return _save(graph, path)


@dataclass(frozen=True)
class TinyWeights:
    folder: Path
    swapper: TinySwapper
    recognizer: TinyRecognizer
    detector: Path


def build_weights_folder(
    folder: Path, faces: Sequence[PlannedFace], *, genderage: bool = False, names: dict[str, str] | None = None
) -> TinyWeights:
    """A folder laid out like a user's: inswapper_128.onnx, w600k_r50.onnx, det_10g.onnx (+ genderage.onnx)."""
    defaults = {"swapper": "inswapper_128.onnx", "recognizer": "w600k_r50.onnx", "detector": "det_10g.onnx"}
    names = {**defaults, **(names or {})}
    swapper = build_inswapper(folder / names["swapper"])
    recognizer = build_recognizer(folder / names["recognizer"])
    detector = build_scrfd(folder / names["detector"], faces)
    if genderage:
        build_genderage(folder / "genderage.onnx")
    return TinyWeights(folder, swapper, recognizer, detector)
