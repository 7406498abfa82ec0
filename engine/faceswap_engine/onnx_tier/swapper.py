"""inswapper_128: target crop at arcface_128 in RGB/255 NCHW, source latent = normed embedding @ emap, renormalised.

The emap (512x512) is the last initializer of the graph; ORT never uses it, so it is read with the ``onnx`` package.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from .errors import WrongModelShape
from .recognizer import EMBEDDING_SIZE, normed
from .sessions import TensorSpec, inputs_of, outputs_of
from .templates import ARCFACE_128, align_matrix


def looks_like_inswapper(inputs: list[TensorSpec], outputs: list[TensorSpec]) -> bool:
    if len(inputs) != 2 or len(outputs) != 1:
        return False
    image = [i for i in inputs if len(i.shape) == 4]
    latent = [i for i in inputs if len(i.shape) == 2]
    return (
        len(image) == 1
        and len(latent) == 1
        and image[0].dim(1) == 3
        and image[0].dim(2) is not None
        and image[0].dim(2) == image[0].dim(3)
        and latent[0].dim(1) == EMBEDDING_SIZE
        and len(outputs[0].shape) == 4
    )


def read_emap(path: Path) -> np.ndarray:
    """The last graph initializer, which must be a 512x512 float matrix."""
    model = onnx.load(str(path))
    if not model.graph.initializer:
        raise WrongModelShape(f"{path.name}: swapper has no initializers, so no emap", loc=[path.name])
    emap = numpy_helper.to_array(model.graph.initializer[-1]).astype(np.float32)
    del model
    if emap.shape != (EMBEDDING_SIZE, EMBEDDING_SIZE):
        raise WrongModelShape(
            f"{path.name}: last initializer (emap) has shape {emap.shape}, expected (512, 512)", loc=[path.name]
        )
    return emap


class InSwapper:
    def __init__(self, session: ort.InferenceSession, path: Path) -> None:
        self.session = session
        self.path = path
        ins = inputs_of(session)
        self.target_name = next(i.name for i in ins if len(i.shape) == 4)
        self.source_name = next(i.name for i in ins if len(i.shape) == 2)
        self.size = int(next(i for i in ins if len(i.shape) == 4).dim(2) or 128)
        self.output_name = outputs_of(session)[0].name
        self.emap = read_emap(path)

    def latent(self, embedding: np.ndarray) -> np.ndarray:
        """Source latent (1 x 512): normalised embedding through the emap, normalised again."""
        latent = normed(np.asarray(embedding, dtype=np.float32).reshape(-1)) @ self.emap
        return normed(latent).reshape(1, -1).astype(np.float32)

    def align(self, kps: np.ndarray) -> np.ndarray:
        return align_matrix(kps, ARCFACE_128, self.size)

    def swap_crop(self, crop_bgr: np.ndarray, latent: np.ndarray) -> np.ndarray:
        """Swapped face (BGR uint8, size x size) for an aligned target crop."""
        blob = (crop_bgr[:, :, ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)[None].copy()
        out = np.asarray(
            self.session.run([self.output_name], {self.target_name: blob, self.source_name: latent})[0]
        )[0]
        rgb = np.clip(out.transpose(1, 2, 0), 0.0, 1.0) * 255.0
        return np.ascontiguousarray(rgb[:, :, ::-1]).round().astype(np.uint8)

    def swap(self, frame_bgr: np.ndarray, kps: np.ndarray, latent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Aligned swapped crop and the frame->crop matrix, ready for ``paste_back``."""
        matrix = self.align(kps)
        crop = cv2.warpAffine(frame_bgr, matrix, (self.size, self.size), borderMode=cv2.BORDER_REPLICATE)
        return self.swap_crop(crop, latent), matrix
