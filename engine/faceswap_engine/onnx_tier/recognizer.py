"""ArcFace-style recognizer: 112x112 crop at the arcface_112_v2 template, (x-127.5)/127.5 RGB, N x 512 out."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from .sessions import TensorSpec, inputs_of, outputs_of
from .templates import ARCFACE_112_V2, align_matrix

EMBEDDING_SIZE = 512


def looks_like_recognizer(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> bool:
    return (
        len(inputs) == 1
        and len(inputs[0].shape) == 4
        and inputs[0].dim(1) == 3
        and inputs[0].dim(2) == 112
        and inputs[0].dim(3) == 112
        and len(outputs) == 1
        and len(outputs[0].shape) == 2
        and outputs[0].dim(1) == EMBEDDING_SIZE
    )


class ArcFaceRecognizer:
    def __init__(self, session: ort.InferenceSession, path: Path) -> None:
        self.session = session
        self.path = path
        self.input_name = inputs_of(session)[0].name
        self.output_name = outputs_of(session)[0].name
        self.size = 112

    def crop(self, frame_bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
        matrix = align_matrix(kps, ARCFACE_112_V2, self.size)
        return cv2.warpAffine(frame_bgr, matrix, (self.size, self.size), borderValue=0.0)

    def embed_crops(self, crops_bgr: list[np.ndarray]) -> np.ndarray:
        """Raw embeddings (N x 512) of aligned 112x112 BGR crops."""
        batch = np.stack([c[:, :, ::-1] for c in crops_bgr]).astype(np.float32)
        batch = ((batch - 127.5) / 127.5).transpose(0, 3, 1, 2).copy()
        return np.asarray(self.session.run([self.output_name], {self.input_name: batch})[0], dtype=np.float32)

    def embed(self, frame_bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
        """Raw (not normalised) 512-D embedding of the face with these keypoints."""
        return self.embed_crops([self.crop(frame_bgr, kps)])[0]


def normed(embedding: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(embedding))
    return embedding / norm if norm > 0 else embedding
