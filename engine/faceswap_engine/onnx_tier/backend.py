"""The ONNX tier behind the engine's ``Backend`` protocol (``faceswap_engine.swap.backend``).

The session keeps tracking (Face Mesh), smoothing, gender, masks and blending; this backend supplies:
``detect`` (SCRFD/YOLO-face seeds the tracker), ``embed`` (ArcFace embedding -> inswapper latent, once per
source) and ``swap`` (inswapper_128 render of the target face, inverse-warped into the session's region).
``swap_face`` does the whole insightface-style paste-back without the session, for standalone use and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from .attributes import GenderAge
from .config import LoadedWeights, weights_dir_from_env
from .detector import ScrfdDetector, YoloFaceDetector
from .discovery import Discovery, discover
from .faces import DetectedFace
from .paste import feathered_box_mask, paste_back
from .recognizer import ArcFaceRecognizer, normed
from .swapper import InSwapper

if TYPE_CHECKING:
    from faceswap_engine.swap.backend import FaceGeometry, Region
    from faceswap_engine.swap.detector import Detection

Gender = Literal["female", "male"]


@dataclass(frozen=True)
class OnnxIdentity:
    """A source face for this tier: its normalised ArcFace embedding and the inswapper latent derived from it."""

    embedding: np.ndarray  # (512,) L2-normalised
    latent: np.ndarray  # (1, 512) normed(embedding @ emap)


def _box_iou(a: np.ndarray, b: tuple[float, float, float, float]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def six_keypoints(kps: np.ndarray) -> np.ndarray:
    """BlazeFace-style keypoints from insightface's 5 (the tracker reads the eye line from points 0 and 1).

    0 image-left eye, 1 image-right eye, 2 nose tip, 3 mouth centre, 4/5 ear estimates along the eye line.
    """
    left, right, nose = kps[0], kps[1], kps[2]
    mouth = (kps[3] + kps[4]) / 2
    across = right - left
    return np.stack([left, right, nose, mouth, left - 0.9 * across, right + 0.9 * across]).astype(np.float32)


class OnnxBackend:
    """insightface-compatible models from a folder (see ``discovery``) on CPU onnxruntime sessions."""

    name = "onnx-inswapper"
    colour_match = False  # inswapper renders the target's lighting itself

    def __init__(self, found: Discovery) -> None:
        self.discovery = found
        det = found.detector
        assert det is not None  # discover() guarantees it
        self.detector: ScrfdDetector | YoloFaceDetector = (
            ScrfdDetector(det.session, det.path) if det.role == "scrfd" else YoloFaceDetector(det.session, det.path)
        )
        self.recognizer = ArcFaceRecognizer(found.models["recognizer"].session, found.models["recognizer"].path)
        self.swapper = InSwapper(found.models["swapper"].session, found.models["swapper"].path)
        ga = found.models.get("genderage")
        self.gender_model = GenderAge(ga.session, ga.path) if ga else None
        self.mask = feathered_box_mask(self.swapper.size)

    @property
    def files(self) -> dict[str, Path]:
        """Which file plays which role (for logs and the CLI)."""
        return {role: model.path for role, model in self.discovery.models.items()}

    def summary(self) -> LoadedWeights:
        folder = next(iter(self.discovery.models.values())).path.parent
        return LoadedWeights(
            folder=str(folder),
            models={role: m.path.name for role, m in self.discovery.models.items()},
            ignored=[p.name for p in self.discovery.ignored],
        )

    @property
    def has_gender(self) -> bool:
        return self.gender_model is not None

    # ------------------------------------------------------------ engine Backend protocol

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """Detections that seed the session's tracker (box, score, 6 BlazeFace-style keypoints)."""
        from faceswap_engine.swap.detector import Detection

        return [
            Detection(tuple(float(v) for v in f.bbox[:4]), f.score, six_keypoints(f.kps))  # type: ignore[arg-type]
            for f in self.find_faces(image_bgr)
        ]

    def embed(self, image_bgr: np.ndarray, face: FaceGeometry) -> OnnxIdentity:
        """Identity of a source face; aligned on this tier's own detector keypoints when it finds the same face."""
        kps = np.asarray(face.kps5, dtype=np.float64)
        matches = [(f, _box_iou(f.bbox, face.box)) for f in self.find_faces(image_bgr)]
        best = max(matches, key=lambda m: m[1], default=None)
        if best is not None and best[1] > 0.3:
            kps = best[0].kps
        return self.identity(self.embedding_at(image_bgr, kps))

    def swap(self, frame_bgr: np.ndarray, face: FaceGeometry, identity: object, region: Region) -> np.ndarray:
        """The inswapper render of ``face`` warped back into ``region`` (BGR uint8, region-sized).

        Outside the 128 crop the frame's own pixels are returned, and the crop's border is feathered into them,
        so whatever mask the session applies never shows a hard crop edge.
        """
        ident = identity if isinstance(identity, OnnxIdentity) else self.identity(np.asarray(identity))
        x0, y0, x1, y1 = (int(v) for v in region)
        crop, matrix = self.swapper.swap(frame_bgr, np.asarray(face.kps5, dtype=np.float64), ident.latent)
        shifted = matrix.copy()
        shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)  # crop <- region coordinates
        return paste_back(np.ascontiguousarray(frame_bgr[y0:y1, x0:x1]), crop, shifted, self.mask)

    # ------------------------------------------------------------ stages, usable without the session

    def find_faces(self, frame_bgr: np.ndarray) -> list[DetectedFace]:
        """Faces with the detector's 5 keypoints, best score first."""
        return self.detector.detect(frame_bgr)

    def embedding_at(self, frame_bgr: np.ndarray, kps: np.ndarray) -> np.ndarray:
        """L2-normalised 512-D ArcFace embedding of the face with these 5 keypoints."""
        return normed(self.recognizer.embed(frame_bgr, kps))

    def identity(self, embedding: np.ndarray) -> OnnxIdentity:
        emb = normed(np.asarray(embedding, dtype=np.float32).reshape(-1))
        return OnnxIdentity(emb, self.swapper.latent(emb))

    def gender(self, frame_bgr: np.ndarray, face: DetectedFace | FaceGeometry) -> Gender | None:
        """Gender from genderage.onnx (bbox-centred crop), or None when the folder has no attribute model."""
        if self.gender_model is None:
            return None
        box = face.bbox if isinstance(face, DetectedFace) else np.asarray(face.box, dtype=np.float64)
        return self.gender_model.predict(frame_bgr, box)[0]

    def swap_face(
        self,
        frame_bgr: np.ndarray,
        kps: np.ndarray,
        source: OnnxIdentity | np.ndarray,
        mask: np.ndarray | None = None,
    ) -> np.ndarray:
        """A new frame with the face at ``kps`` replaced (insightface-style paste-back under a feathered box).

        ``source`` is an identity or a raw embedding; ``mask`` (crop-sized, 0..1) is combined by minimum.
        """
        ident = source if isinstance(source, OnnxIdentity) else self.identity(source)
        crop, matrix = self.swapper.swap(frame_bgr, np.asarray(kps, dtype=np.float64), ident.latent)
        blend = self.mask if mask is None else np.minimum(self.mask, mask.astype(np.float32))
        return paste_back(frame_bgr, crop, matrix, blend)


def load_backend(weights_dir: str | Path, threads: int | None = None) -> OnnxBackend:
    """Discover the models in ``weights_dir`` and build the backend; raises ``WeightsError`` subclasses."""
    return OnnxBackend(discover(Path(weights_dir), threads))


def backend_from_env(threads: int | None = None) -> OnnxBackend | None:
    """The backend for ``ENGINE_WEIGHTS_DIR`` when it is set (errors if the folder is unusable), else None."""
    folder = weights_dir_from_env()
    return load_backend(folder, threads) if folder is not None else None


__all__ = ["OnnxBackend", "OnnxIdentity", "backend_from_env", "load_backend", "six_keypoints"]
