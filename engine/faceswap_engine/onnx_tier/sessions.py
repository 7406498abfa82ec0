"""ONNX Runtime sessions on the CPU, with the model's I/O described by shape (names are never relied on)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

Dim = int | str | None


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[Dim, ...]

    def dim(self, index: int) -> int | None:
        """A dimension if it is a fixed number, else None (symbolic or unknown)."""
        value = self.shape[index] if -len(self.shape) <= index < len(self.shape) else None
        return value if isinstance(value, int) and value > 0 else None


def default_threads() -> int:
    """Intra-op threads: all cores up to 4 (more rarely helps small face models); ENGINE_ONNX_THREADS overrides."""
    override = os.environ.get("ENGINE_ONNX_THREADS", "").strip()
    if override.isdigit() and int(override) > 0:
        return int(override)
    return max(1, min(os.cpu_count() or 1, 4))


def open_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """A CPU session; ORT's warnings (e.g. inswapper's unused emap initializer) are silenced."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def inputs_of(session: ort.InferenceSession) -> list[TensorSpec]:
    return [TensorSpec(i.name, tuple(i.shape)) for i in session.get_inputs()]


def outputs_of(session: ort.InferenceSession) -> list[TensorSpec]:
    return [TensorSpec(o.name, tuple(o.shape)) for o in session.get_outputs()]


def describe(specs: list[TensorSpec]) -> str:
    """Shapes for error messages, e.g. ``[1x3x128x128, 1x512]``."""
    return "[" + ", ".join("x".join(str(d) if d not in (None, "") else "?" for d in s.shape) for s in specs) + "]"
