"""A thin TFLite runner on ai-edge-litert (the TensorFlow Lite interpreter without TensorFlow).

Interpreters are not thread-safe, so every session builds its own; one thread each because the engine's video
pipeline already keeps the second core busy with decode/encode.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class TfliteModel:
    """One loaded .tflite model with a single float32 NHWC input; outputs returned in model order."""

    def __init__(self, path: Path, num_threads: int = 1) -> None:
        self._interpreter = Interpreter(model_path=str(path), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        inp = self._interpreter.get_input_details()[0]
        self._input_index = inp["index"]
        self.input_shape = tuple(int(v) for v in inp["shape"])
        self._outputs = [d["index"] for d in self._interpreter.get_output_details()]
        self.output_shapes = [tuple(int(v) for v in d["shape"]) for d in self._interpreter.get_output_details()]

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the input image."""
        return self.input_shape[1], self.input_shape[2]

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        self._interpreter.set_tensor(self._input_index, tensor.reshape(self.input_shape).astype(np.float32, copy=False))
        self._interpreter.invoke()
        return [self._interpreter.get_tensor(i) for i in self._outputs]
